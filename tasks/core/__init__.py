"""Plain functions over Qlib and the registry (no Prefect here): data writers, workflow configuration,
training, evaluation, the Qlib recorder store and the registry operations every entry point shares.
The Prefect tasks in `tasks/*.py` are thin wrappers over these."""

from tasks.core.third_party import silence_known_notices

# Before any module here imports Qlib (which imports gym): every process that runs our Qlib code is quiet.
silence_known_notices()
