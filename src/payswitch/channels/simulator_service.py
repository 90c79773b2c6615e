"""The channel simulator served over gRPC as a real PaymentChannel: the fake bank tests and demos call."""

import grpc

from ..v1 import channel_pb2_grpc
from .simulator import ChannelRejected, ChannelSimulator


class SimulatorServicer(channel_pb2_grpc.PaymentChannelServicer):
    """PaymentChannel over a ChannelSimulator; a ChannelRejected becomes the status it names (for
    Batch, the simulator's UNIMPLEMENTED when built with batch_enabled=False)."""

    def __init__(self, simulator: ChannelSimulator):
        self.simulator = simulator

    async def Authorize(self, request, context):
        return await self._answer(self.simulator.authorize, request, context)

    async def Capture(self, request, context):
        return await self._answer(self.simulator.capture, request, context)

    async def Void(self, request, context):
        return await self._answer(self.simulator.void, request, context)

    async def Refund(self, request, context):
        return await self._answer(self.simulator.refund, request, context)

    async def Inquire(self, request, context):
        return await self._answer(self.simulator.inquire, request, context)

    async def Batch(self, request, context):
        return await self._answer(self.simulator.batch, request, context)

    @staticmethod
    async def _answer(method, request, context):
        try:
            return await method(request)
        except ChannelRejected as rejected:
            # abort() raises to end the handler; the status name is one grpc.StatusCode member.
            await context.abort(grpc.StatusCode[rejected.code], rejected.message)


async def start_simulator_server(
    simulator: ChannelSimulator, listen: str = "127.0.0.1:0"
) -> tuple[grpc.aio.Server, int]:
    """Starts a grpc.aio server for `simulator` on `listen` (loopback by default; port 0 picks a free
    port) and returns it with the bound port. Stop it with `await server.stop(grace)`."""
    server = grpc.aio.server()
    channel_pb2_grpc.add_PaymentChannelServicer_to_server(SimulatorServicer(simulator), server)
    port = server.add_insecure_port(listen)
    if not port:
        raise RuntimeError(f"could not bind the channel simulator to {listen}")
    await server.start()
    return server, port
