"""The bare gRPC baseline: a grpc.aio server that answers PaymentSwitch's methods with fixed replies.

It does no verification, parsing, storage or channel call, so what it costs per call is what gRPC and
Python cost; the switch's throughput as a ratio of it says what the switch adds. Its replies are
well-formed messages of the sizes the switch sends, so the very same client code can drive both.

    python -m payswitch.loadgen.echo_server --listen 127.0.0.1:0 --batch-size 100
"""

import argparse
import asyncio

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ..cli import runtime
from ..v1 import switch_pb2, types_pb2
from ..wire_format import varint

SERVICE = "/payswitch.v1.PaymentSwitch/"
STREAM_METHOD = SERVICE + "Stream"


def representative_authorize_response() -> switch_pb2.AuthorizeResponse:
    """An approved authorization shaped like the switch's (same fields, ids and strings of the same length)."""
    now = Timestamp(seconds=1_767_225_600, nanos=123_456_000)
    amount = types_pb2.Money(amount_minor=12_345, currency="USD", exponent=2)
    operation = types_pb2.Operation(
        operation_id="op_" + "0" * 26, kind=types_pb2.OPERATION_KIND_AUTHORIZATION, status=types_pb2.OPERATION_STATUS_SUCCEEDED,
        amount=amount, channel_reference="sim_0000000001", idempotency_key="bench-00000000-0-0000000000",
        created_at=now, updated_at=now)
    payment = types_pb2.Payment(
        payment_id="pay_" + "0" * 26, merchant_id="m_bench_1", merchant_reference="order-00000000-0-0000000000",
        status=types_pb2.PAYMENT_STATUS_AUTHORIZED, amount=amount, channel="sim",
        method=types_pb2.PaymentMethodSummary(card=types_pb2.CardSummary(
            bin="424242", last4="4242", exp_month=12, exp_year=2029, scheme="visa")),
        created_at=now, updated_at=now, operations=[operation])
    return switch_pb2.AuthorizeResponse(payment=payment, operation=operation)


class EchoHandler(grpc.GenericRpcHandler):
    """Authorize gets a fixed AuthorizeResponse, Batch and each Stream message a fixed BatchResponse
    of `batch_size` results; any other method gets its request bytes back."""

    def __init__(self, batch_size: int):
        authorize = representative_authorize_response()
        self.authorize_reply = authorize.SerializeToString()
        self.batch_reply = switch_pb2.BatchResponse(
            results=[switch_pb2.BatchItemResult(authorize=authorize)] * batch_size).SerializeToString()
        # StreamResponse field 2 (response) is the same for every message; only field 1 (sequence) varies.
        self._stream_reply_tail = b"\x12" + varint(len(self.batch_reply)) + self.batch_reply

    def service(self, handler_call_details):
        method = handler_call_details.method
        if method == STREAM_METHOD:
            return grpc.stream_stream_rpc_method_handler(self._stream)
        reply = {SERVICE + "Authorize": self.authorize_reply, SERVICE + "Batch": self.batch_reply}.get(method)
        return grpc.unary_unary_rpc_method_handler(self._fixed(reply))

    @staticmethod
    def _fixed(reply: bytes | None):
        async def answer(request: bytes, context) -> bytes:
            return request if reply is None else reply
        return answer

    async def _stream(self, requests, context):
        tail = self._stream_reply_tail
        async for message in requests:
            # The sequence is echoed so the caller can match replies; the batch is not looked at.
            yield b"\x08" + varint(switch_pb2.StreamRequest.FromString(message).sequence) + tail


async def start_echo_server(listen: str = "127.0.0.1:0", batch_size: int = 100) -> tuple[grpc.aio.Server, int]:
    # The same server options as SwitchApp, so only the handlers differ.
    server = grpc.aio.server(options=(("grpc.so_reuseport", 0),))
    server.add_generic_rpc_handlers((EchoHandler(batch_size),))
    port = server.add_insecure_port(listen)
    if not port:
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    return server, port


async def _serve(listen: str, batch_size: int) -> int:
    server, port = await start_echo_server(listen, batch_size)
    print(f"echo listening on {listen.rpartition(':')[0]}:{port}", flush=True)
    stop = asyncio.Event()
    with runtime.stop_on_signals(stop):
        await stop.wait()
    await server.stop(1)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m payswitch.loadgen.echo_server", description=__doc__.split("\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args(argv)
    return runtime.run(_serve(args.listen, args.batch_size))


if __name__ == "__main__":
    raise SystemExit(main())
