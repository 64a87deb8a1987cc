"""The REST API and Studio (transport layer)."""
