"""How the flows are deployed and run: the CLI (`cli/`), the web page (`ui/`), `qmp serve` (`serve.py`) and the
deployments they share, `prefect.yaml` (shipped inside the package, read without importing Prefect)."""

from pathlib import Path
from typing import Any

PREFECT_YAML = Path(__file__).with_name("prefect.yaml")


def prefect_yaml_entries(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    """The deployment entries of ``path`` (prefect.yaml by default), as written."""
    import yaml

    entries: list[dict[str, Any]] = yaml.safe_load(path.read_text())["deployments"]
    return entries
