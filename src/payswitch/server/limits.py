"""Limits that keep one caller, careless or hostile, from exhausting the switch for everyone.

gRPC enforces each of them before a request reaches our code: an oversized message or too many calls
at once is RESOURCE_EXHAUSTED, headers over the bound are refused, a client pinging more often than
allowed is sent GOAWAY (too_many_pings) after `max_ping_strikes`, and connections are recycled after
an idle period and a maximum age so none is held forever. The batch item count (1 to 1000) is checked
by the edge; deadlines on channel calls by the service.
"""

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class ServerLimits:
    max_message_bytes: int = 4 * MIB          # largest request or response; a full Batch fits
    max_concurrent_calls: int = 2000          # across all connections; beyond: RESOURCE_EXHAUSTED
    max_streams_per_connection: int = 200     # HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS
    max_metadata_bytes: int = 16 * 1024       # all headers of one call
    keepalive_seconds: float = 60.0           # the server pings an idle client this often...
    keepalive_timeout_seconds: float = 20.0   # ...and drops it when no answer comes within this
    min_client_ping_interval_seconds: float = 10.0  # a client may not ping more often than this
    max_ping_strikes: int = 2                 # pings too early before GOAWAY
    max_connection_idle_seconds: float = 600.0
    max_connection_age_seconds: float = 3600.0
    max_connection_age_grace_seconds: float = 30.0  # for calls in flight when the age is reached

    def server_options(self) -> list[tuple[str, int]]:
        def ms(seconds: float) -> int:
            return int(seconds * 1000)

        return [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_concurrent_streams", self.max_streams_per_connection),
            ("grpc.max_metadata_size", self.max_metadata_bytes),
            ("grpc.keepalive_time_ms", ms(self.keepalive_seconds)),
            ("grpc.keepalive_timeout_ms", ms(self.keepalive_timeout_seconds)),
            ("grpc.keepalive_permit_without_calls", 0),
            ("grpc.http2.min_ping_interval_without_data_ms", ms(self.min_client_ping_interval_seconds)),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", ms(self.min_client_ping_interval_seconds)),
            ("grpc.http2.max_ping_strikes", self.max_ping_strikes),
            ("grpc.max_connection_idle_ms", ms(self.max_connection_idle_seconds)),
            ("grpc.max_connection_age_ms", ms(self.max_connection_age_seconds)),
            ("grpc.max_connection_age_grace_ms", ms(self.max_connection_age_grace_seconds)),
        ]
