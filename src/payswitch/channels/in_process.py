"""A ChannelClient that calls a ChannelSimulator in the same process: the switch without a network.

It classifies exactly as the gRPC client does (the table in `status_mapping`): a ChannelRejected is the
status it names, so FAILED with "channel_<code>" (UNKNOWN for Inquire unless NOT_FOUND); a timeout is
UNKNOWN, since the simulator may have acted before the deadline (the timeout test card does).
Requests cross as bytes, as on the wire, so neither side can hold or change the other's message.
Batch goes to `simulator.batch` and is read as the gRPC client reads it (`batching`), falling back to
concurrent single calls, for good, when the simulator answers UNIMPLEMENTED.
"""

import asyncio
import logging
from collections.abc import Sequence

from ..v1 import channel_pb2
from .base import BatchableRequest, ChannelClient, ChannelResponse, Outcome
from .batching import batch_request, classify_batch_response, classify_batch_status, unknown_after_exception
from .simulator import ChannelRejected, ChannelSimulator
from .status_mapping import classify_result, classify_status

logger = logging.getLogger(__name__)


class InProcessChannelClient(ChannelClient):
    """The channel `name` served by `simulator` in this event loop; `default_timeout` (seconds)
    applies when a call passes timeout=None."""

    def __init__(self, name: str, simulator: ChannelSimulator, *, default_timeout: float = 5.0):
        self.name = name
        self.simulator = simulator
        self.default_timeout = default_timeout
        # False once the simulator answered Batch with UNIMPLEMENTED.
        self.batch_supported = True

    def __repr__(self) -> str:
        return f"InProcessChannelClient(name={self.name!r})"

    async def authorize(self, request: channel_pb2.ChannelAuthorizeRequest,
                        timeout: float | None = None) -> ChannelResponse:
        return await self._call(self.simulator.authorize, request, timeout)

    async def capture(self, request: channel_pb2.ChannelCaptureRequest,
                      timeout: float | None = None) -> ChannelResponse:
        return await self._call(self.simulator.capture, request, timeout)

    async def void(self, request: channel_pb2.ChannelVoidRequest, timeout: float | None = None) -> ChannelResponse:
        return await self._call(self.simulator.void, request, timeout)

    async def refund(self, request: channel_pb2.ChannelRefundRequest,
                     timeout: float | None = None) -> ChannelResponse:
        return await self._call(self.simulator.refund, request, timeout)

    async def inquire(self, request: channel_pb2.ChannelInquireRequest,
                      timeout: float | None = None) -> ChannelResponse:
        return await self._call(self.simulator.inquire, request, timeout, inquire=True)

    async def _batch_call(self, requests: Sequence[BatchableRequest],
                          timeout: float | None) -> list[ChannelResponse] | None:
        sent = channel_pb2.ChannelBatchRequest.FromString(batch_request(requests).SerializeToString())
        try:
            response = await asyncio.wait_for(self.simulator.batch(sent),
                                              self.default_timeout if timeout is None else timeout)
        except ChannelRejected as rejected:
            if rejected.code == "UNIMPLEMENTED":
                self.batch_supported = False
                return None
            return classify_batch_status(len(requests), rejected.code, rejected.message)
        except TimeoutError:
            return classify_batch_status(len(requests), "DEADLINE_EXCEEDED", "Deadline Exceeded")
        except Exception as error:  # noqa: BLE001 - a simulator bug must not read as "did not act"
            return unknown_after_exception(self.name, len(requests), error)
        return classify_batch_response(response, requests)

    async def _call(self, method, request, timeout: float | None, *, inquire: bool = False) -> ChannelResponse:
        sent = type(request).FromString(request.SerializeToString())
        try:
            result = await asyncio.wait_for(method(sent), self.default_timeout if timeout is None else timeout)
        except ChannelRejected as rejected:
            return classify_status(rejected.code, rejected.message, inquire=inquire)
        except TimeoutError:
            return classify_status("DEADLINE_EXCEEDED", "Deadline Exceeded", inquire=inquire)
        except Exception as error:  # noqa: BLE001 - a simulator bug must not read as "did not act"
            logger.warning("channel %s: %s raised %s; outcome unknown", self.name, request.reference,
                           type(error).__name__)
            return ChannelResponse(Outcome.UNKNOWN,
                                   message=f"channel call raised {type(error).__name__}; outcome unknown")
        return classify_result(result, request.reference)
