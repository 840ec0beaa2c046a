"""Artifact files: the store protocol, the local directory and object storage, the codec (no SQL here)."""
