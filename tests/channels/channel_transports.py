"""The two ways the switch reaches a simulator, as async context managers: connect(simulator) yields a
ChannelClient for it, over a real gRPC server on loopback or in process."""

import contextlib

from payswitch.channels.grpc_client import GrpcChannelClient
from payswitch.channels.in_process import InProcessChannelClient
from payswitch.channels.simulator_service import start_simulator_server


@contextlib.asynccontextmanager
async def grpc_transport(simulator):
    server, port = await start_simulator_server(simulator, "127.0.0.1:0")
    client = GrpcChannelClient("sim", f"127.0.0.1:{port}", default_timeout=5)
    try:
        yield client
    finally:
        await client.close()
        await server.stop(0)


@contextlib.asynccontextmanager
async def in_process_transport(simulator):
    yield InProcessChannelClient("sim", simulator, default_timeout=5)


TRANSPORTS = [grpc_transport, in_process_transport]
TRANSPORT_IDS = ["grpc", "in_process"]
