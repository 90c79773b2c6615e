"""Payment channels: the client interface the switch calls, its gRPC and in-process forms, the simulator."""
