"""Flow tests use the session's temporary Prefect server: the `prefect_server` fixture of tests/conftest.py."""
