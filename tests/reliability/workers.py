"""Worker functions run in spawned processes by test_concurrent_processes.py (module-level so spawn can import them)."""

from __future__ import annotations

import random
import traceback
from datetime import timedelta
from typing import Any

from registry import (
    CorruptedArtifactError,
    InvalidTransitionError,
    ModelFilter,
    ModelMetadata,
    ModelRegistry,
    ModelStatus,
)

BARRIER_TIMEOUT_S = 120


def promote_one_per_round(registry_dir: str, url: str, ids: list[str], barrier: Any, errors: Any) -> None:
    """Round after round: wait for the others, promote this worker's candidate, wait for the check."""
    try:
        with ModelRegistry(registry_dir, url) as reg:
            for round_no, model_id in enumerate(ids):
                barrier.wait(BARRIER_TIMEOUT_S)
                reg.set_production_model(model_id, actor="promoter", reason=f"round {round_no}")
                barrier.wait(BARRIER_TIMEOUT_S)
    except BaseException:
        errors.put(traceback.format_exc())
        barrier.abort()


def mixed_worker(role: str, seed: int, registry_dir: str, url: str, names: list[str], steps: int) -> dict[str, Any]:
    """Register, promote or clean up `steps` times; returns unexpected errors and expected races separately."""
    rng = random.Random(seed)
    unexpected: list[str] = []
    races = 0
    with ModelRegistry(registry_dir, url) as reg:
        for step in range(steps):
            name = rng.choice(names)
            try:
                if role == "register":
                    metrics = {"ic_mean": rng.uniform(-0.05, 0.1)}
                    reg.register_model({"seed": seed, "step": step}, ModelMetadata(
                        model_name=name, training_date="2024-01-01", performance_metrics=metrics))
                elif role == "promote":
                    choices = reg.list_models(ModelFilter(model_name=name, status=["registered", "candidate"], limit=5))
                    if not choices:
                        continue
                    model_id = rng.choice(choices).model_id
                    try:
                        reg.set_production_model(model_id, actor=f"promoter-{seed}")
                    except (InvalidTransitionError, CorruptedArtifactError):
                        # Archived (and perhaps purged) by cleanup since it was listed: the only allowed refusal.
                        if reg.get_model_info(model_id).status != ModelStatus.ARCHIVED:
                            raise
                        races += 1
                else:
                    reg.archive_stale(max_age_days=1, keep_last=2, purge_archived_after_days=0, actor="cleanup")
                    reg.sweep_orphans(grace_period=timedelta(minutes=5))
            except Exception:
                unexpected.append(f"{role} step {step}: {traceback.format_exc()}")
    return {"role": role, "unexpected": unexpected, "races": races}
