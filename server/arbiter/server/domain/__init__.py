"""Domain layer: plain Python models and rules. No I/O, no gRPC, no SQLite."""
