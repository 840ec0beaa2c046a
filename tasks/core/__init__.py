"""Plain functions over Qlib and the registry (no Prefect here), one sub-package per concern: `data/`,
`qlib/`, `features/`, `windows/`, `replay/`, `predictions/`, `approvals/`, plus `lifecycle` (register,
promote, roll back), `errors` and `timing`. Settings come in as arguments (loaded at the edges: the Prefect
tasks in `tasks/*_steps.py`, the flows, the CLI); the Prefect tasks are thin wrappers over these, and they emit
the registry changes' Prefect events (`tasks.events`)."""

from tasks.core.third_party import silence_known_notices

# Before any module here imports Qlib (which imports gym): every process that runs our Qlib code is quiet.
silence_known_notices()
