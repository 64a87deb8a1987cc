"""The gRPC front door: servicers that decode, call the core, encode; and the interceptor in front of them."""
