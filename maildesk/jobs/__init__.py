"""Jobs: each one a run-once function the scheduler calls and the CLI exposes."""
