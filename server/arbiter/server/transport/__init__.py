"""Transport layer: the gRPC and HTTP front doors, proto <-> domain conversion and error mapping."""
