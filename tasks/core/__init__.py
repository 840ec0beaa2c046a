"""Plain functions over Qlib and the registry (no Prefect here): data writers, workflow configuration,
training, evaluation, the Qlib recorder store and the registry operations every entry point shares.
The Prefect tasks in `tasks/*.py` are thin wrappers over these."""
