"""What every function shares: AWS clients, the results table, S3 storage, telemetry, events."""
