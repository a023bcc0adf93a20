"""Training of the learned parts of the answer path, on public data only (never on an acceptance set)."""
