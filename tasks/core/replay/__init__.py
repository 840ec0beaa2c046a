"""Rolling replays (Qlib's Rolling): the plan, shared features, one window, the combined result."""
