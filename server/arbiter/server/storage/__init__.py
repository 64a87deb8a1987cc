"""Storage layer: the adapters behind the application's interfaces, one folder per backend."""
