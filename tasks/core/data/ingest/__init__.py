"""Ingesting new rows into a Qlib data directory: sources, the trading calendar, validation, corrections and the
crash-safe commit (plain functions over pandas and the file system; no Prefect, no registry)."""
