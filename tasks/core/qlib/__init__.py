"""Qlib itself: the session, workflow configs, training, evaluation, scoring, recorders, online tags (no Prefect)."""
