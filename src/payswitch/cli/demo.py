"""`payswitch demo`: a switch, a simulator channel and a SQLite store in one process, and a few hundred
signed payments through every lifecycle path, checked and summarized: routing with a failover from a
channel that is down, the card vault and token payments, and a risk rule declining before any channel.

Exits 0 only when every path ended as expected and the ledger verifies.
"""

import asyncio
import os
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field

import grpc

from . import runtime

MERCHANTS = ("m_demo_books", "m_demo_games")
TEST_CARDS = {
    "visa": "4242424242424242",
    "mastercard": "5555555555554444",
    "do_not_honor": "4000000000000002",
    "insufficient_funds": "4000000000009995",
    "channel_error": "4000000000000119",
    "timeout": "4000000000000259",
    "partial": "4000000000000325",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run signed payments through a local switch and simulator")
    parser.add_argument("--db", help="keep the SQLite database at this path (default: a temporary file)")
    parser.add_argument("--rounds", type=int, default=40, help="payments per lifecycle path (default 40)")
    parser.set_defaults(handler=run)


@dataclass
class PathResult:
    name: str
    expected: str
    outcomes: dict[str, int] = field(default_factory=dict)

    def record(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    @property
    def ok(self) -> bool:
        return set(self.outcomes) == {self.expected}

    @property
    def count(self) -> int:
        return sum(self.outcomes.values())


def _card(number: str, year: int):
    from ..v1 import types_pb2

    return types_pb2.Card(number=number, exp_month=12, exp_year=year, cvv="123", holder_name="Demo Holder")


def _status_name(payment) -> str:
    from ..processing.render import payment_status_name

    return payment_status_name(payment.status)


async def _rpc_code(call) -> str:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code().name
    return "OK"


class DemoRun:
    def __init__(self, clients, rounds: int):
        self.clients = clients
        self.rounds = rounds
        self.year = time.gmtime().tm_year + 2
        self.results: list[PathResult] = []
        self.payments = 0

    def _client(self, index: int):
        return self.clients[index % len(self.clients)]

    def _next_reference(self) -> str:
        self.payments += 1
        return f"order-{self.payments:06d}"

    async def _authorize(self, client, card_name: str, amount: int, currency: str = "USD", reference=None, **extra):
        return await client.authorize(amount, currency, card=_card(TEST_CARDS[card_name], self.year),
                                      merchant_reference=reference or self._next_reference(), **extra)

    async def _path(self, name: str, expected: str, scenario, rounds: int | None = None) -> None:
        result = PathResult(name, expected)
        self.results.append(result)
        outcomes = await asyncio.gather(*(scenario(i) for i in range(rounds or self.rounds)), return_exceptions=True)
        for outcome in outcomes:
            result.record(outcome if isinstance(outcome, str) else f"error: {type(outcome).__name__}: {outcome}")

    async def full_refund(self, i):
        client = self._client(i)
        payment = (await self._authorize(client, "visa", 1000 + i)).payment
        await client.capture(payment.payment_id)
        return _status_name((await client.refund(payment.payment_id)).payment)

    async def partial_capture_refunds(self, i):
        client = self._client(i)
        payment = (await self._authorize(client, "mastercard", 10_000 + i, "EUR")).payment
        await client.capture(payment.payment_id, 7_000, "EUR")
        await client.refund(payment.payment_id, 2_000, "EUR")
        return _status_name((await client.refund(payment.payment_id, 1_000, "EUR")).payment)

    async def void(self, i):
        client = self._client(i)
        payment = (await self._authorize(client, "visa", 500 + i)).payment
        return _status_name((await client.void(payment.payment_id)).payment)

    async def capture_jpy(self, i):
        client = self._client(i)
        payment = (await self._authorize(client, "mastercard", 3_000 + i, "JPY")).payment
        return _status_name((await client.capture(payment.payment_id)).payment)

    async def wallet(self, i):
        from ..v1 import types_pb2

        client = self._client(i)
        response = await client.authorize(2_500, "GBP", wallet=types_pb2.Wallet(provider="applepay", token=f"tok_{i:08d}"),
                                          merchant_reference=self._next_reference())
        return _status_name((await client.capture(response.payment.payment_id)).payment)

    def declined(self, card_name: str):
        async def scenario(i):
            payment = (await self._authorize(self._client(i), card_name, 4_200)).payment
            return f"{_status_name(payment)} {payment.decline_code}".strip()
        return scenario

    async def partial_accepted(self, i):
        client = self._client(i)
        payment = (await self._authorize(client, "partial", 2_000, allow_partial_authorization=True)).payment
        captured = (await client.capture(payment.payment_id)).payment
        return f"{_status_name(captured)} {captured.captured_minor} of {captured.requested_minor}"

    async def partial_refused(self, i):
        payment = (await self._authorize(self._client(i), "partial", 2_000)).payment
        return f"{_status_name(payment)} {payment.decline_code}"

    async def idempotent_replay(self, i):
        client = self._client(i)
        key, reference = f"demo-replay-{secrets.token_hex(8)}", self._next_reference()
        first, second = await asyncio.gather(
            *(self._authorize(client, "visa", 777, reference=reference, idempotency_key=key) for _ in range(2)))
        return "same payment" if first == second else "different answers"

    async def over_refund(self, i):
        client = self._client(i)
        payment = (await self._authorize(client, "visa", 1_000)).payment
        await client.capture(payment.payment_id)
        await client.refund(payment.payment_id, 600, "USD")
        return await _rpc_code(client.refund(payment.payment_id, 600, "USD"))

    async def capture_after_void(self, i):
        client = self._client(i)
        payment = (await self._authorize(client, "visa", 1_000)).payment
        await client.void(payment.payment_id)
        return await _rpc_code(client.capture(payment.payment_id))

    async def bad_currency(self, i):
        return await _rpc_code(self._authorize(self._client(i), "visa", 1_000, "XYZ"))

    async def failover(self, i):
        """m_demo_games' large EUR payments are routed to a channel that is down first."""
        payment = (await self._authorize(self.clients[1], "visa", 60_000 + i, "EUR")).payment
        if payment.routing_rule != "games-big-eur":
            return f"routed by {payment.routing_rule}"
        return f"{_status_name(payment)} on {payment.channel}"

    async def token_payment(self, i):
        from ..v1 import switch_pb2

        client = self._client(i)
        card = _card(TEST_CARDS["mastercard"], self.year)
        card.ClearField("cvv")  # the vault never keeps a CVV: it comes with each payment
        token = (await client.tokenize(card)).token
        payment = (await client.authorize(900 + i, "USD", card_token=switch_pb2.CardToken(token=token, cvv="123"),
                                          merchant_reference=self._next_reference())).payment
        captured = (await client.capture(payment.payment_id)).payment
        return f"{_status_name(captured)} by token" if captured.method.card.token == token else "no token"

    async def risk_limit(self, i):
        payment = (await self._authorize(self.clients[0], "visa", 2_000_000 + i)).payment
        return f"{_status_name(payment)} {payment.decline_code}"

    async def all_paths(self) -> None:
        rounds = self.rounds
        await self._path("authorize, capture, refund in full", "REFUNDED", self.full_refund)
        await self._path("authorize, partial capture, two partial refunds", "PARTIALLY_REFUNDED",
                         self.partial_capture_refunds)
        await self._path("authorize, void", "VOIDED", self.void)
        await self._path("authorize and capture in JPY (no minor unit)", "CAPTURED", self.capture_jpy)
        await self._path("wallet authorize, capture", "CAPTURED", self.wallet)
        await self._path("card declined: do_not_honor", "DECLINED do_not_honor", self.declined("do_not_honor"))
        await self._path("card declined: insufficient funds", "DECLINED insufficient_funds",
                         self.declined("insufficient_funds"))
        await self._path("channel error before acting", "FAILED channel_internal", self.declined("channel_error"))
        await self._path("channel timeout: outcome unknown", "PENDING", self.declined("timeout"), max(rounds // 5, 1))
        await self._path("partial approval, accepted by the caller", "CAPTURED 1000 of 2000", self.partial_accepted)
        await self._path("partial approval, not accepted: reversed", "DECLINED partial_approval_not_accepted",
                         self.partial_refused)
        await self._path("same idempotency key sent twice at once", "same payment", self.idempotent_replay)
        await self._path("refund over the captured amount", "OUT_OF_RANGE", self.over_refund, max(rounds // 5, 1))
        await self._path("capture after void", "FAILED_PRECONDITION", self.capture_after_void, max(rounds // 5, 1))
        await self._path("unknown currency", "INVALID_ARGUMENT", self.bad_currency, max(rounds // 5, 1))
        await self._path("routed to a channel that is down: failover", "AUTHORIZED on simulator",
                         self.failover, max(rounds // 5, 1))
        await self._path("card kept in the vault, paid by token", "CAPTURED by token", self.token_payment)
        await self._path("over the merchant's risk limit", "DECLINED risk_amount_limit", self.risk_limit,
                         max(rounds // 5, 1))


def _print_table(results: list[PathResult]) -> None:
    width, expected_width = max(len(r.name) for r in results), max(len(r.expected) for r in results)
    print(f"{'path':<{width}}  {'runs':>4}  {'expected':<{expected_width}}  result")
    print("-" * (width + expected_width + 22))
    for r in results:
        got = ", ".join(f"{outcome} x{n}" for outcome, n in sorted(r.outcomes.items()))
        print(f"{r.name:<{width}}  {r.count:>4}  {r.expected:<{expected_width}}  {'ok' if r.ok else 'UNEXPECTED: ' + got}")


ROUTES = """
version = "demo-routes-1"

[[rules]]
name = "games-big-eur"            # tries a channel that is down first: the switch fails over
merchants = ["m_demo_games"]
currencies = ["EUR"]
min_amount_minor = 50000
channels = ["down", "simulator"]

[[rules]]
name = "everything-else"
channels = ["simulator"]
"""

RISK = """
version = "demo-risk-1"

[[limits]]
name = "books-usd"
merchant = "m_demo_books"
currency = "USD"
max_amount_minor = 1000000
"""


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _demo(args, database: str, folder: str) -> int:
    from ..channels.simulator import ChannelSimulator
    from ..channels.simulator_service import start_simulator_server
    from ..client import SwitchClient
    from pathlib import Path

    from ..config import ChannelConfig, MerchantConfig, SigningKey, SwitchConfig
    from ..keys.sealing import MasterKey
    from ..ledger.verify import verify_ledger
    from ..server.app import SwitchApp

    simulator = ChannelSimulator(timeout_delay_s=2.0)
    simulator_server, simulator_port = await start_simulator_server(simulator, "127.0.0.1:0")
    secrets_by_merchant = {merchant: secrets.token_bytes(32) for merchant in MERCHANTS}
    config = SwitchConfig(
        listen="127.0.0.1:0", database=database, grace_seconds=5,
        # The demo sends error and timeout cards on purpose, many at once: with the default breaker
        # they would open the circuit and turn the other paths into channel_circuit_open.
        channels=(ChannelConfig("simulator", f"127.0.0.1:{simulator_port}", timeout_ms=500,
                                breaker_failures=10_000),
                  ChannelConfig("down", f"127.0.0.1:{_closed_port()}", timeout_ms=500)),
        merchants=tuple(MerchantConfig(m, "simulator", (SigningKey("k1", s),)) for m, s in secrets_by_merchant.items()),
        routing=Path(folder) / "routes.toml", risk=Path(folder) / "risk.toml")
    config.routing.write_text(ROUTES)
    config.risk.write_text(RISK)
    # A master key for this run only: the vault's card numbers die with it, as a demo's should.
    app = SwitchApp(config, master_key=MasterKey.generate("demo"))
    port = await app.start()
    print(f"switch on 127.0.0.1:{port}, simulator channel on 127.0.0.1:{simulator_port}, store {database}")
    clients = [SwitchClient(f"127.0.0.1:{port}", m, "k1", s) for m, s in secrets_by_merchant.items()]
    demo = DemoRun(clients, args.rounds)
    started = time.perf_counter()
    try:
        await demo.all_paths()
    finally:
        elapsed = time.perf_counter() - started
        for client in clients:
            await client.close()
        await app.stop(grace=5)
        await simulator_server.stop(1)
    print()
    _print_table(demo.results)
    print(f"\n{demo.payments} authorizations sent, {sum(r.count for r in demo.results)} scenarios in {elapsed:.2f} s; "
          f"channel calls: {dict(sorted(simulator.calls.items()))}")
    from ..store.sqlite import SqliteStore

    store = SqliteStore(database)
    await store.open()
    try:
        report = await verify_ledger(store)
    finally:
        await store.close()
    print(f"ledger verify: {report.summary()}")
    return 0 if report.ok and all(r.ok for r in demo.results) else 1


def run(args) -> int:
    if args.rounds < 1:
        print("payswitch demo: --rounds must be at least 1", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="payswitch-demo-") as folder:
        return runtime.run(_demo(args, args.db or os.path.join(folder, "demo.db"), folder))
