"""The switch assembled from its configuration: store, channels, router, service, resolver, verifier and
the gRPC server (PaymentSwitch, and SwitchAdmin when configured)."""

import asyncio
import contextlib
import logging
import time

import grpc

from ..channels.base import ChannelClient
from ..channels.guarded import GuardedChannel, ResilienceSettings
from ..config import ChannelConfig, SwitchConfig
from ..hotpath import signing
from ..keys.ring import KeyRing
from ..keys.sealing import MasterKey, Sealer
from ..keys.store import SigningKeyStore
from ..processing.channel_directory import ChannelBinding, ChannelDirectory
from ..processing.risk_gate import RiskGate
from ..processing.resolver import PendingResolver
from ..processing.service import PaymentService
from ..routing.router import Router
from ..store.sqlite import SqliteStore
from ..tls import ListenerCertificates, add_listener
from ..vault.card_vault import CardVault
from .edge import SwitchEdge

log = logging.getLogger(__name__)

PURGE_INTERVAL_S = 3600


class ListenerError(OSError):
    """The listen address could not be bound (in use, not this machine's, or not resolvable)."""

    def __init__(self, address: str):
        super().__init__(f"cannot listen on {address}")
        self.address = address


def _channel_client(config: ChannelConfig, simulator_factory) -> ChannelClient:
    if config.in_process:
        from ..channels.in_process import InProcessChannelClient

        inner = InProcessChannelClient(config.name, simulator_factory())
    else:
        from ..channels.grpc_client import GrpcChannelClient

        # gRPC waits up to 120 s before reconnecting to a target that refused; a channel that comes
        # back must be reachable by the time its breaker lets a probe through.
        reconnect_ms = max(100, min(5_000, int(config.breaker_open_seconds * 1000)))
        inner = GrpcChannelClient(config.name, config.target, tls=config.tls, options=(
            ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", reconnect_ms)))
    return GuardedChannel(inner, settings=ResilienceSettings(
        failure_threshold=config.breaker_failures, open_seconds=config.breaker_open_seconds,
        max_in_flight=config.max_in_flight, slot_wait_seconds=config.slot_wait_ms / 1000))


def _load_routing_table(config: SwitchConfig):
    """Reads, validates and compiles the routing file; raises RoutingConfigError naming each problem."""
    from ..routing.config import load_routing
    from ..routing.table import RoutingTable

    return RoutingTable(load_routing(config.routing, config.channel_names(), config.merchant_ids()))


def _load_rules(config: SwitchConfig):
    """The routing table and the risk engine the files describe (None for a file not configured): both
    built aside, so a reload swaps both or, when either file is refused (a ConfigError naming each
    problem), neither."""
    from ..risk.config import load_risk
    from ..risk.engine import RiskEngine

    table = None if config.routing is None else _load_routing_table(config)
    engine = None if config.risk is None else RiskEngine(load_risk(config.risk, config.merchant_ids()))
    return table, engine


def _default_simulator():
    from ..channels.simulator import ChannelSimulator

    return ChannelSimulator()


class SwitchApp:
    """One switch process. start() binds the listener; stop() drains calls, then the store."""

    def __init__(self, config: SwitchConfig, *, database: str | None = None, listen: str | None = None,
                 clock=time.time, simulator_factory=_default_simulator, server_options=(),
                 master_key: MasterKey | None = None):
        """`master_key` seals signing-key secrets (and vaulted cards); by default it comes from
        PAYSWITCH_MASTER_KEY or PAYSWITCH_MASTER_KEY_FILE (docs/keys.md), and without one only the
        configuration's keys sign."""
        self.config = config
        self.listen = listen or config.listen
        self.store = SqliteStore(database or config.database)
        bindings = {c.name: ChannelBinding(_channel_client(c, simulator_factory), c.timeout_ms / 1000)
                    for c in config.channels}
        self.channels = ChannelDirectory(bindings)
        clock_us = lambda: int(clock() * 1_000_000)  # noqa: E731
        table, risk_engine = _load_rules(config)
        self.routing_loaded_at_us = clock_us()
        self.router = Router(table, config.default_channels(), self.channels)
        self.master_key = master_key if master_key is not None else MasterKey.from_env()
        self.vault = None if self.master_key is None else CardVault(self.store, self.master_key, clock_us=clock_us)
        self.risk = RiskGate(risk_engine, self.router, None if self.vault is None else self.vault.fingerprint)
        self.service = PaymentService(self.store, self.channels, self.router, vault=self.vault, risk=self.risk,
                                      clock_us=clock_us)
        self.resolver = PendingResolver(self.store, self.service, self.channels, config.resolver, clock_us=clock_us)
        self.verifier = signing.Verifier(config.signing_keys(), clock=clock)
        self.key_store = SigningKeyStore(database or config.database)
        self.keys = KeyRing(self.key_store, self.verifier, Sealer(self.master_key) if self.master_key else None,
                            config_keys=config.signing_keys(), merchants=config.merchant_ids(), clock=clock)
        self._clock = clock
        self._clock_us = clock_us
        self._server_options = (("grpc.so_reuseport", 0), *server_options)
        self._server: grpc.aio.Server | None = None
        self._background: list[asyncio.Task] = []
        self._reloading = asyncio.Lock()
        self.certificates = None if config.tls is None else ListenerCertificates(config.tls)
        self.port: int | None = None

    async def start(self) -> int:
        await self.store.open()
        try:
            if self.vault is not None:
                await self.vault.open()
            else:
                log.warning("no master key (PAYSWITCH_MASTER_KEY): card numbers are not kept and Tokenize is off")
            await self.key_store.open()
            await self.keys.start()
            await self.risk.restore(self.store, self._clock_us())
        except BaseException:
            await self.key_store.close()
            await self.store.close()
            raise
        limits = self.config.limits
        self._server = grpc.aio.server(options=[*limits.server_options(), *self._server_options],
                                       maximum_concurrent_rpcs=limits.max_concurrent_calls)
        binding = None if self.config.tls is None else self.config.tls.binding
        self._server.add_generic_rpc_handlers(
            (SwitchEdge(self.verifier, self.service, self._clock, binding=binding).handler(),))
        if self.config.admin is not None:
            from .admin import AdminService

            admin = AdminService(self.config.admin.token_sha256, self, binding)
            self._server.add_generic_rpc_handlers((admin.handler(),))
        try:
            self.port = add_listener(self._server, self.listen, self.certificates)
        except RuntimeError:  # grpc's "Failed to bind": the same as the port 0 older versions return
            self.port = 0
        if not self.port:
            await self._close_stores()
            raise ListenerError(self.listen)
        await self._server.start()
        self._background = [asyncio.create_task(self._purge_idempotency_keys()),
                            asyncio.create_task(self.resolver.run())]
        return self.port

    async def reload_rules(self) -> None:
        """Builds the routing table and the risk engine aside (off the event loop) and swaps both in;
        when either file is refused (a ConfigError naming each problem) both stay as they were."""
        async with self._reloading:
            table, engine = await asyncio.to_thread(_load_rules, self.config)
            if engine is not None:  # carries and restores the windows; nothing awaits from its swap to the router's
                await self.risk.swap(engine, self.store, self._clock_us())
            if table is not None:
                self.router.swap(table)
            self.routing_loaded_at_us = self._clock_us()
        log.info("rules reloaded: routing %s, risk %s", table.version if table else "none",
                 engine.version if engine else "none")

    async def reload_certificates(self):
        """Re-reads the listener's certificate files off the event loop; new connections get them. A
        TlsConfigError (the file named) leaves the certificate in use."""
        return await asyncio.to_thread(self.certificates.reload)

    async def stop(self, grace: float | None = None) -> None:
        """Stops accepting, lets in-flight calls finish within the grace period, then closes the store."""
        if self._server is None:
            return
        await self._server.stop(self.config.grace_seconds if grace is None else grace)
        await self.service.drain()
        for task in self._background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.channels.close()
        await self._close_stores()
        self._server = None

    async def _close_stores(self) -> None:
        await self.keys.stop()
        await self.key_store.close()
        await self.store.close()

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
