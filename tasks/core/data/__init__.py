"""Qlib data directories: synthetic markets, CSV import, the binary format and the data version (no Prefect)."""
