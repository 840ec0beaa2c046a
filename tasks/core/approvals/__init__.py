"""Approvals and the champion/challenger re-scoring they and the retrain flow share."""
