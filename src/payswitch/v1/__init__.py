"""Generated protobuf and gRPC code for payswitch.v1 (built from protos/, never edited by hand)."""
