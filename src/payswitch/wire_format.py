"""Protobuf wire-format pieces, for assembling a message from parts that are already serialized
(stored responses into a BatchResponse, pre-encoded fields into a request) without parsing them."""


def varint(value: int) -> bytes:
    """A non-negative integer as a protobuf base-128 varint."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_delimited(field_number: int, payload: bytes) -> bytes:
    """One field of wire type 2: its key, the payload's length, the payload."""
    return varint((field_number << 3) | 2) + varint(len(payload)) + payload
