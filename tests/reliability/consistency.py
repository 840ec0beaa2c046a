"""The registry's promises, checked from the outside: rows own verified files, the history explains the rows."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from registry import ModelRegistry, ModelStatus
from registry.artifacts.local import STAGING_DIR


def assert_registry_consistent(reg: ModelRegistry) -> None:
    """Every row has its artifact with a matching checksum, a registration event, and a history ending in its status;
    at most one production model per name."""
    models = reg.list_models()
    productions = Counter(m.model_name for m in models if m.status == ModelStatus.PRODUCTION)
    assert all(count == 1 for count in productions.values()), productions
    assert len({m.model_id for m in models}) == len(models)
    for info in models:
        if info.purged_at is None:
            reg.verify_artifact(info.model_id)
        assert Path(info.metadata_path).is_file(), f"{info.model_id} has no metadata snapshot"
        events = reg.history(model_id=info.model_id)
        registered = [e for e in events if e.event == "registered"]
        assert registered, f"{info.model_id} has no registration event"
        last_life = events[events.index(registered[-1]):]
        assert last_life[-1].to_status == info.status, f"{info.model_id}: history ends in {last_life[-1].to_status}"


def orphan_entries(reg: ModelRegistry) -> set[str]:
    """Artifact directories (and staging leftovers) that no row owns."""
    owned = {m.model_id for m in reg.list_models()}
    return {
        str(p.relative_to(reg.registry_dir)) for p in reg.artifacts.entries()
        if p.parent.name == STAGING_DIR or p.name not in owned
    }


def assert_swaps_chain(reg: ModelRegistry, name: str) -> list[str]:
    """Each promotion's demoted predecessor is exactly the production before it, in the same transaction;
    returns the promoted ids in order."""
    production: str | None = None
    demoted_at: object | None = None  # a demotion's time, until the promotion of its transaction is seen
    promoted: list[str] = []
    for e in reg.history(model_name=name):
        if e.from_status == ModelStatus.PRODUCTION:
            assert e.model_id == production, f"event {e.event_id} demotes {e.model_id}, production was {production}"
            production, demoted_at = None, (e.created_at if e.event == "demoted" else None)
        elif e.to_status == ModelStatus.PRODUCTION:
            assert production is None, f"event {e.event_id} promotes {e.model_id} over {production} without a demotion"
            assert demoted_at in (None, e.created_at), f"swap to {e.model_id} split over two transactions"
            production, demoted_at = e.model_id, None
            promoted.append(e.model_id)
    assert demoted_at is None, "a demotion without the promotion that caused it"
    current = reg.get_production_model(name)
    assert (current.model_id if current else None) == production
    return promoted
