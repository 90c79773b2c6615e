"""The switch assembled from its configuration: store, channels, service, verifier and gRPC server."""

import asyncio
import contextlib
import logging
import time

import grpc

from ..channels.base import ChannelClient
from ..config import SwitchConfig
from ..hotpath import signing
from ..processing.channel_directory import ChannelBinding, ChannelDirectory
from ..processing.service import PaymentService
from ..store.sqlite import SqliteStore
from .edge import SwitchEdge

log = logging.getLogger(__name__)

PURGE_INTERVAL_S = 3600


def _channel_client(config, simulator_factory) -> ChannelClient:
    if config.in_process:
        from ..channels.in_process import InProcessChannelClient

        return InProcessChannelClient(config.name, simulator_factory())
    from ..channels.grpc_client import GrpcChannelClient

    return GrpcChannelClient(config.name, config.target)


def _default_simulator():
    from ..channels.simulator import ChannelSimulator

    return ChannelSimulator()


class SwitchApp:
    """One switch process. start() binds the listener; stop() drains calls, then the store."""

    def __init__(self, config: SwitchConfig, *, database: str | None = None, listen: str | None = None,
                 clock=time.time, simulator_factory=_default_simulator, server_options=()):
        self.config = config
        self.listen = listen or config.listen
        self.store = SqliteStore(database or config.database)
        bindings = {c.name: ChannelBinding(_channel_client(c, simulator_factory), c.timeout_ms / 1000)
                    for c in config.channels}
        self.channels = ChannelDirectory(bindings, {m.merchant_id: m.channel for m in config.merchants})
        self.service = PaymentService(self.store, self.channels, clock_us=lambda: int(clock() * 1_000_000))
        self.verifier = signing.Verifier(config.signing_keys(), clock=clock)
        self._clock = clock
        self._server_options = (("grpc.so_reuseport", 0), *server_options)
        self._server: grpc.aio.Server | None = None
        self._purger: asyncio.Task | None = None
        self.port: int | None = None

    async def start(self) -> int:
        await self.store.open()
        self._server = grpc.aio.server(options=self._server_options)
        self._server.add_generic_rpc_handlers((SwitchEdge(self.verifier, self.service, self._clock).handler(),))
        self.port = self._server.add_insecure_port(self.listen)
        if not self.port:
            await self.store.close()
            raise OSError(f"cannot listen on {self.listen}")
        await self._server.start()
        self._purger = asyncio.create_task(self._purge_idempotency_keys())
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """Stops accepting, lets in-flight calls finish within the grace period, then closes the store."""
        if self._server is None:
            return
        await self._server.stop(self.config.grace_seconds if grace is None else grace)
        await self.service.drain()
        self._purger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._purger
        await self.channels.close()
        await self.store.close()
        self._server = None

    async def wait(self) -> None:
        await self._server.wait_for_termination()

    async def _purge_idempotency_keys(self) -> None:
        retention_us = self.config.idempotency_retention_hours * 3600 * 1_000_000
        while True:
            try:
                purged = await self.store.purge_idempotency(int(self._clock() * 1_000_000) - retention_us)
                if purged:
                    log.info("purged %d idempotency keys older than %d hours", purged,
                             self.config.idempotency_retention_hours)
            except Exception:  # noqa: BLE001 - a failed purge is retried next round
                log.exception("idempotency key purge failed")
            await asyncio.sleep(PURGE_INTERVAL_S)
