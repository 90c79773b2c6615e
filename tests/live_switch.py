"""A live switch for tests: a real gRPC server on loopback, a SQLite file and a simulator channel."""

import asyncio
import hashlib
import secrets
import socket
import threading
import time

import grpc
import pytest

from payswitch.channels.simulator import ChannelSimulator
from payswitch.channels.simulator_service import start_simulator_server
from payswitch.client import RequestSigner, SwitchClient, SyncSwitchClient
from payswitch.config import AdminConfig, ChannelConfig, MerchantConfig, ResolverConfig, SigningKey, SwitchConfig
from payswitch.keys.sealing import MasterKey
from payswitch.server.app import SwitchApp
from payswitch.server.limits import ServerLimits
from payswitch.v1 import types_pb2

APPROVE = "4242424242424242"
DO_NOT_HONOR = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
CHANNEL_ERROR = "4000000000000119"
TIMEOUT = "4000000000000259"


def card(number: str = APPROVE, **fields) -> types_pb2.Card:
    values = dict(number=number, exp_month=12, exp_year=time.gmtime().tm_year + 3, cvv="123", holder_name="T Tester")
    values.update(fields)
    return types_pb2.Card(**values)


class LiveSwitch:
    """A switch, its SQLite file and a gRPC simulator channel, served from an event loop on a thread.

    Tests talk to it over loopback gRPC like any caller; `call` runs a coroutine on the server's loop
    for the rare look behind the API (the simulator's call counters, the store).
    """

    MERCHANTS = ("m_alpha", "m_beta")

    def __init__(self, folder, *, channel_timeout_ms: int = 400, timeout_delay_s: float = 3.0, clock=time.time,
                 channels: tuple[str, ...] = ("sim",), unreachable: tuple[str, ...] = (), routing: str | None = None,
                 resolver: ResolverConfig = ResolverConfig(), admin_token: str | None = None,
                 limits: ServerLimits = ServerLimits(), tls=None, master_key=None, risk: str | None = None,
                 external: dict[str, str] | None = None, keyless_merchants: tuple[str, ...] = (),
                 **channel_settings):
        """`channels` each get a simulator served on its own port; `unreachable` channels point at a
        port where nothing listens (until `revive` starts a simulator there); `external` channels are
        served elsewhere (a channel process), by name and address. `routing` is the text of a routing
        file; merchants default to the first channel. `keyless_merchants` are configured with no key of
        their own: theirs are created through SwitchAdmin."""
        self.folder = folder
        self.database = str(folder / "switch.db")
        self.secrets = {merchant: secrets.token_bytes(32) for merchant in self.MERCHANTS}
        self.keyless_merchants = keyless_merchants
        self.channel_timeout_ms = channel_timeout_ms
        self.timeout_delay_s = timeout_delay_s
        self.clock = clock
        self.channel_names = channels
        self.unreachable = unreachable
        self.external = dict(external or {})
        self.routing_path = None
        if routing is not None:
            self.routing_path = folder / "routes.toml"
            self.routing_path.write_text(routing)
        self.risk_path = None
        if risk is not None:
            self.risk_path = folder / "risk.toml"
            self.risk_path.write_text(risk)
        self.resolver = resolver
        self.limits = limits
        self.tls = tls
        # A vault like production's unless a test asks for none (master_key=False).
        self.master_key = MasterKey.generate("mk-test") if master_key is None else master_key or None
        self.admin_token = admin_token
        self.channel_settings = channel_settings
        self.simulators: dict[str, ChannelSimulator] = {}
        self._simulator_servers: list = []
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._clients: list[SyncSwitchClient] = []
        self.app = None

    def call(self, coroutine, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> "LiveSwitch":
        self.call(self._start())
        return self

    async def _start(self):
        ports = {}
        for name in self.channel_names:
            ports[name] = await self._serve_simulator(name, 0)
        self.unreachable_ports = {name: free_port() for name in self.unreachable}
        ports.update(self.unreachable_ports)
        targets = {name: f"127.0.0.1:{port}" for name, port in ports.items()} | self.external
        self.simulator = self.simulators.get(self.channel_names[0]) if self.channel_names else None
        config = SwitchConfig(
            listen="127.0.0.1:0", database=self.database, grace_seconds=2,
            channels=tuple(ChannelConfig(name, target, self.channel_timeout_ms, **self.channel_settings)
                           for name, target in targets.items()),
            merchants=tuple(MerchantConfig(m, next(iter(targets)), (SigningKey("k1", s),))
                            for m, s in self.secrets.items())
            + tuple(MerchantConfig(m, next(iter(targets)), ()) for m in self.keyless_merchants),
            routing=self.routing_path, risk=self.risk_path, resolver=self.resolver, limits=self.limits, tls=self.tls,
            admin=None if self.admin_token is None else AdminConfig(hashlib.sha256(self.admin_token.encode()).digest()))
        self.app = SwitchApp(config, clock=self.clock, master_key=self.master_key)
        self.port = await self.app.start()
        self.address = f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        if self.app is not None:
            self.call(self._stop())
            self.app = None

    async def _serve_simulator(self, name: str, port: int) -> int:
        simulator = self.simulators[name] = ChannelSimulator(timeout_delay_s=self.timeout_delay_s)
        server, port = await start_simulator_server(simulator, f"127.0.0.1:{port}")
        self._simulator_servers.append(server)
        return port

    def revive(self, name: str) -> ChannelSimulator:
        """Starts a simulator on an unreachable channel's port: the channel comes back."""
        self.call(self._serve_simulator(name, self.unreachable_ports[name]))
        return self.simulators[name]

    async def _stop(self):
        await self.app.stop(grace=2)
        for server in self._simulator_servers:
            await server.stop(0.5)

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    def client(self, merchant: str = "m_alpha", **options) -> SyncSwitchClient:
        client = SyncSwitchClient(self.address, merchant, "k1", self.secrets[merchant], **options)
        self._clients.append(client)
        return client

    def async_client(self, merchant: str = "m_alpha", **options) -> SwitchClient:
        """For use inside the test's own event loop (asyncio.run)."""
        return SwitchClient(self.address, merchant, "k1", self.secrets[merchant], **options)

    def signer(self, merchant: str = "m_alpha") -> RequestSigner:
        return RequestSigner(merchant, "k1", self.secrets[merchant])

    def channel_calls(self, method: str, channel: str | None = None) -> int:
        simulator = self.simulator if channel is None else self.simulators[channel]
        return simulator.calls.get(method, 0)


def free_port() -> int:
    """A loopback port nothing listens on (bound and released at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rpc_error(call) -> grpc.RpcError:
    """The error a call raises (the test fails if it succeeds)."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value
