"""Arbiter server: a next-best-action decisioning service over gRPC."""
