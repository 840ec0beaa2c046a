"""How the flows are deployed and run: the CLI (`cli/`), the web page (`ui/`), `qmp serve` (`serve.py`) and the
deployments they share, `prefect.yaml` (shipped inside the package, read without importing Prefect)."""

from pathlib import Path

PREFECT_YAML = Path(__file__).with_name("prefect.yaml")
