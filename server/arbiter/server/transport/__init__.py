"""Transport layer: gRPC servicers, proto <-> domain conversion and error mapping."""
