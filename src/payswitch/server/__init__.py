"""The gRPC edge: raw bytes in, verify, parse, validate, call the service, map errors to statuses."""
