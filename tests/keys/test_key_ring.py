"""The key ring over a real SQLite file and each Verifier twin: rotation, revocation, validity windows at
their exact boundaries, configured keys, other processes' writes, and secrets kept out of logs and rows.

Time is a fake wall clock shared by the ring and the Verifier; boundaries are tested by calling
refresh() where the ring's timer would, and one short real-time test shows the timer is armed.
"""

import asyncio
import base64
import contextlib
import logging
import os
import sqlite3
import time

import pytest

from payswitch import hotpath
from payswitch.client import RequestSigner
from payswitch.hotpath.signing import SigningError
from payswitch.keys.ring import KeyRing
from payswitch.keys.sealing import MasterKey, MasterKeyError, Sealer, SealingError
from payswitch.keys.store import (InvalidKeyRequest, KeyAlreadyExists, KeyInConfiguration, KeyNotFound,
                                  MasterKeyNotConfigured, SigningKeyStore, TooManyActiveKeys)

METHOD = "/payswitch.v1.PaymentSwitch/Authorize"
BODY = b"\x0a\x03abc"
T0 = 1_800_000_000  # whole seconds, so boundaries in microseconds are exact
SECOND = 1_000_000
SEALER = Sealer(MasterKey.generate("mk1"))


class WallClock:
    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=("compiled", "pure"))
def signing(request):
    """The signing module of one backend: the ring must drive both Verifier twins alike."""
    if request.param == "pure":
        return hotpath.pure_module("signing")
    if os.environ.get("PAYSWITCH_NO_EXTENSIONS") == "1":
        pytest.skip("PAYSWITCH_NO_EXTENSIONS=1: the compiled backend is not wanted")
    module = hotpath.compiled_module("signing")
    if module is None:  # a silent fallback would let a broken build pass as pure Python
        pytest.fail("payswitch._speedups.signing is not built; set PAYSWITCH_NO_EXTENSIONS=1 to test pure only")
    return module


@pytest.fixture
def database(tmp_path):
    return str(tmp_path / "switch.db")


@contextlib.asynccontextmanager
async def key_ring(database, signing, clock, sealer=SEALER, **options):
    store = SigningKeyStore(database)
    await store.open()
    verifier = signing.Verifier({}, clock=clock)
    options.setdefault("resync_seconds", None)
    ring = KeyRing(store, verifier, sealer, clock=clock, **options)
    try:
        await ring.start()
        yield ring, verifier
    finally:
        await ring.stop()
        await store.close()


def verdict(verifier, merchant: str, key_id: str, secret: bytes, clock) -> str:
    """'ok' or the failure name, for a freshly signed request."""
    metadata = RequestSigner(merchant, key_id, secret, clock=clock).metadata(METHOD, BODY)
    try:
        verifier.verify(METHOD, metadata, BODY)
    except SigningError as error:
        return error.reason
    return "ok"


def test_two_active_keys_both_verify_and_revoking_one_leaves_the_other(database, signing):
    clock = WallClock()

    async def scenario():
        async with key_ring(database, signing, clock) as (ring, verifier):
            old, old_secret = await ring.create_key("m_acme", "2025-a")
            new, new_secret = await ring.create_key("m_acme")
            assert new.key_id.startswith("k_") and len(new.key_id) == 18
            assert len(old_secret) == len(new_secret) == 32 and old_secret != new_secret
            assert (old.status, old.source, old.in_use, old.valid_from_us, old.valid_until_us) == (
                "active", "store", True, T0 * SECOND, None)
            assert verdict(verifier, "m_acme", "2025-a", old_secret, clock) == "ok"
            assert verdict(verifier, "m_acme", new.key_id, new_secret, clock) == "ok"
            assert verdict(verifier, "m_acme", "2025-a", new_secret, clock) == "signature_mismatch"

            clock.now += 5
            revoked = await ring.revoke_key("m_acme", "2025-a")
            assert (revoked.status, revoked.revoked_at_us, revoked.in_use) == ("revoked", (T0 + 5) * SECOND, False)
            assert verdict(verifier, "m_acme", "2025-a", old_secret, clock) == "unknown_key"
            assert verdict(verifier, "m_acme", new.key_id, new_secret, clock) == "ok"
            assert (await ring.revoke_key("m_acme", "2025-a")).revoked_at_us == (T0 + 5) * SECOND  # no change
            listed = {(k.key_id, k.status, k.in_use) for k in await ring.list_keys("m_acme")}
            assert listed == {("2025-a", "revoked", False), (new.key_id, "active", True)}

    asyncio.run(scenario())


def test_a_third_active_key_waits_for_a_revocation_and_expired_keys_do_not_count(database, signing):
    clock = WallClock()

    async def scenario():
        async with key_ring(database, signing, clock, config_keys={("m_conf", "k1"): b"c" * 32}) as (ring, _):
            await ring.create_key("m_acme", "a", valid_until_us=(T0 + 60) * SECOND)
            await ring.create_key("m_acme", "b", valid_from_us=(T0 + 3600) * SECOND)  # issued ahead: counts
            with pytest.raises(TooManyActiveKeys, match="already has 2"):
                await ring.create_key("m_acme", "c")
            await ring.create_key("m_other", "c")  # the cap is per merchant
            clock.now += 60  # "a" has expired
            await ring.create_key("m_acme", "c")
            with pytest.raises(TooManyActiveKeys):
                await ring.create_key("m_acme", "d")
            await ring.revoke_key("m_acme", "b")
            await ring.create_key("m_acme", "d")
            # A configured key counts against the merchant's two.
            await ring.create_key("m_conf", "k2")
            with pytest.raises(TooManyActiveKeys):
                await ring.create_key("m_conf", "k3")
            with pytest.raises(KeyAlreadyExists):
                await ring.create_key("m_acme", "b")  # a revoked key's id is never reused
            assert [k.key_id for k in await ring.list_keys("m_acme")] == ["a", "b", "c", "d"]

    asyncio.run(scenario())


def test_a_key_stops_verifying_exactly_at_valid_until(database, signing):
    clock = WallClock()
    end = (T0 + 100) * SECOND

    async def scenario():
        async with key_ring(database, signing, clock) as (ring, verifier):
            key, secret = await ring.create_key("m_acme", "k1", valid_until_us=end)
            forever, forever_secret = await ring.create_key("m_acme", "k2")
            assert ring.next_boundary_us == end
            clock.now = T0 + 99
            assert ring.refresh(end - 1) == end  # one microsecond before: still valid, same boundary
            assert verdict(verifier, "m_acme", "k1", secret, clock) == "ok"
            clock.now = T0 + 100
            assert ring.refresh() is None  # what the timer does at the boundary; no boundary remains
            assert verdict(verifier, "m_acme", "k1", secret, clock) == "unknown_key"
            assert verdict(verifier, "m_acme", "k2", forever_secret, clock) == "ok"
            assert [(k.key_id, k.in_use) for k in await ring.list_keys("m_acme")] == [("k1", False), ("k2", True)]

    asyncio.run(scenario())


def test_a_key_issued_ahead_is_unknown_until_valid_from(database, signing):
    clock = WallClock()
    start, end = (T0 + 30) * SECOND, (T0 + 90) * SECOND

    async def scenario():
        async with key_ring(database, signing, clock) as (ring, verifier):
            key, secret = await ring.create_key("m_acme", "next", valid_from_us=start, valid_until_us=end)
            assert not key.in_use and ring.next_boundary_us == start
            assert verdict(verifier, "m_acme", "next", secret, clock) == "unknown_key"
            ring.refresh(start - 1)
            assert verdict(verifier, "m_acme", "next", secret, clock) == "unknown_key"
            clock.now = T0 + 30
            assert ring.refresh() == end  # valid now; next, its end
            assert verdict(verifier, "m_acme", "next", secret, clock) == "ok"
            clock.now = T0 + 90
            ring.refresh()
            assert verdict(verifier, "m_acme", "next", secret, clock) == "unknown_key"

    asyncio.run(scenario())


def test_a_restarted_ring_finds_the_keys_and_their_windows(database, signing):
    clock = WallClock()

    async def scenario():
        async with key_ring(database, signing, clock) as (ring, _):
            _, live_secret = await ring.create_key("m_acme", "live")
            await ring.create_key("m_acme", "later", valid_from_us=(T0 + 10) * SECOND)
            await ring.create_key("m_beta", "gone")
            await ring.revoke_key("m_beta", "gone")
        async with key_ring(database, signing, clock) as (ring, verifier):
            assert ring.valid_keys() == {("m_acme", "live")}
            assert ring.next_boundary_us == (T0 + 10) * SECOND
            assert verdict(verifier, "m_acme", "live", live_secret, clock) == "ok"

    asyncio.run(scenario())


def test_the_timer_fires_at_the_boundary_without_anyone_calling_refresh(database, signing):
    async def scenario():
        async with key_ring(database, signing, time.time) as (ring, verifier):
            boundary_us = ring.now_us() + 1_000_000  # room for two commits on a slow, shared disk
            _, ending = await ring.create_key("m_acme", "ending", valid_until_us=boundary_us)
            _, starting = await ring.create_key("m_acme", "starting", valid_from_us=boundary_us)
            assert verdict(verifier, "m_acme", "ending", ending, time.time) == "ok"
            assert verdict(verifier, "m_acme", "starting", starting, time.time) == "unknown_key"
            await asyncio.sleep((boundary_us - ring.now_us()) / 1e6 + 0.3)
            assert verdict(verifier, "m_acme", "ending", ending, time.time) == "unknown_key"
            assert verdict(verifier, "m_acme", "starting", starting, time.time) == "ok"

    asyncio.run(scenario())


def test_configured_keys_always_verify_and_are_not_managed_here(database, signing):
    clock = WallClock()
    configured = b"c" * 32

    async def scenario():
        async with key_ring(database, signing, clock, config_keys={("m_acme", "k1"): configured}) as (ring, verifier):
            assert verdict(verifier, "m_acme", "k1", configured, clock) == "ok"
            with pytest.raises(KeyAlreadyExists):
                await ring.create_key("m_acme", "k1")
            with pytest.raises(KeyInConfiguration):
                await ring.revoke_key("m_acme", "k1")
            [listed] = await ring.list_keys("m_acme")
            assert (listed.key_id, listed.source, listed.status, listed.in_use, listed.valid_until_us) == (
                "k1", "config", "active", True, None)
            _, stored = await ring.create_key("m_acme", "k2")
            ring.set_config_keys({})  # the configuration dropped k1
            assert verdict(verifier, "m_acme", "k1", configured, clock) == "unknown_key"
            assert verdict(verifier, "m_acme", "k2", stored, clock) == "ok"

    asyncio.run(scenario())


def test_another_process_sees_creations_and_revocations_on_resync(database, signing):
    clock = WallClock()

    async def scenario():
        async with key_ring(database, signing, clock) as (writer, _), \
                key_ring(database, signing, clock) as (reader, verifier):
            _, secret = await writer.create_key("m_acme", "k1")
            assert verdict(verifier, "m_acme", "k1", secret, clock) == "unknown_key"
            await reader.reload()
            assert verdict(verifier, "m_acme", "k1", secret, clock) == "ok"
            await writer.revoke_key("m_acme", "k1")
            await reader.reload()
            assert verdict(verifier, "m_acme", "k1", secret, clock) == "unknown_key"

        async with key_ring(database, signing, clock) as (writer, _), \
                key_ring(database, signing, clock, resync_seconds=0.05) as (reader, verifier):
            _, secret = await writer.create_key("m_acme", "k2")
            deadline = time.monotonic() + 5
            while verdict(verifier, "m_acme", "k2", secret, clock) != "ok":  # a resync every 0.05 s
                assert time.monotonic() < deadline, "the reader never resynchronised"
                await asyncio.sleep(0.02)

    asyncio.run(scenario())


def test_stored_keys_that_cannot_be_opened_stop_the_start(database, signing):
    clock = WallClock()

    async def scenario():
        async with key_ring(database, signing, clock) as (ring, _):
            await ring.create_key("m_acme", "k1")
        with pytest.raises(MasterKeyError, match="no master key"):
            async with key_ring(database, signing, clock, sealer=None):
                pass
        with pytest.raises(SealingError, match="m_acme/k1"):
            async with key_ring(database, signing, clock, sealer=Sealer(MasterKey.generate("mk1"))):
                pass
        with pytest.raises(SealingError, match="'mk1', which is not configured"):
            async with key_ring(database, signing, clock, sealer=Sealer(MasterKey.generate("mk2"))):
                pass

    asyncio.run(scenario())


def test_swapped_rows_do_not_open(database, signing, caplog):
    clock = WallClock()

    async def scenario():
        async with key_ring(database, signing, clock) as (ring, verifier):
            _, secret_a = await ring.create_key("m_alpha", "k1")
            _, secret_b = await ring.create_key("m_beta", "k1")
            with sqlite3.connect(database) as raw:  # someone with write access to the file swaps the secrets
                rows = dict(raw.execute("SELECT merchant_id, sealed_secret FROM signing_keys").fetchall())
                for merchant, other in (("m_alpha", "m_beta"), ("m_beta", "m_alpha")):
                    raw.execute("UPDATE signing_keys SET sealed_secret = ? WHERE merchant_id = ?",
                                (rows[other], merchant))
            await ring.reload()  # a running switch logs and drops them
            assert verdict(verifier, "m_alpha", "k1", secret_b, clock) == "unknown_key"
            assert verdict(verifier, "m_alpha", "k1", secret_a, clock) == "unknown_key"
        assert "m_alpha/k1" in caplog.text and "does not open" in caplog.text
        with pytest.raises(SealingError, match="does not open"):  # a starting one refuses to start
            async with key_ring(database, signing, clock):
                pass

    asyncio.run(scenario())


def test_master_key_rotation_reseals_every_stored_secret(database, signing):
    clock = WallClock()
    old, new = MasterKey.generate("2024"), MasterKey.generate("2025")

    async def scenario():
        async with key_ring(database, signing, clock, sealer=Sealer(old)) as (ring, _):
            _, secret = await ring.create_key("m_acme", "k1")
            await ring.create_key("m_acme", "k2")
            await ring.revoke_key("m_acme", "k2")  # erased: nothing to re-seal
        store = SigningKeyStore(database)
        await store.open()
        assert await store.reseal(Sealer(new, retired=[old])) == 1
        assert await store.reseal(Sealer(new, retired=[old])) == 0
        await store.close()
        async with key_ring(database, signing, clock, sealer=Sealer(new)) as (ring, verifier):
            assert verdict(verifier, "m_acme", "k1", secret, clock) == "ok"

    asyncio.run(scenario())


def test_secrets_are_sealed_at_rest_erased_on_revocation_and_never_logged(database, signing, caplog):
    clock = WallClock()
    caplog.set_level(logging.DEBUG)

    async def scenario():
        async with key_ring(database, signing, clock) as (ring, verifier):
            info, secret = await ring.create_key("m_acme", "k1")
            await ring.create_key("m_acme", "k2", valid_until_us=(T0 + 10) * SECOND)
            listed = await ring.list_keys()
            clock.now += 10
            ring.refresh()
            await ring.reload()
            with sqlite3.connect(database) as raw:
                [(stored,)] = raw.execute("SELECT sealed_secret FROM signing_keys WHERE key_id = 'k1'").fetchall()
            assert secret not in stored and secret.hex().encode() not in stored and stored.startswith(b"\x01\x03mk1")
            await ring.revoke_key("m_acme", "k1")
            with sqlite3.connect(database) as raw:
                assert raw.execute("SELECT sealed_secret FROM signing_keys WHERE key_id = 'k1'").fetchone() == (b"",)
            return secret, [info, *listed], [record for record in (await ring._store.list_keys())]

    secret, infos, records = asyncio.run(scenario())
    forms = (secret.hex(), secret.hex().upper(), repr(secret), base64.b64encode(secret).decode(),
             base64.urlsafe_b64encode(secret).decode())
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    assert "k1" in logged and "revoked" in logged  # key ids are logged...
    for form in forms:  # ...secrets in no form
        assert form not in logged
        for shown in (*infos, *records):
            assert form not in repr(shown)


def test_bad_requests_name_their_fields_and_nothing_is_written(database, signing):
    clock = WallClock()

    async def scenario():
        async with key_ring(database, signing, clock) as (ring, _):
            with pytest.raises(InvalidKeyRequest) as caught:
                await ring.create_key("m acme", "k/1", valid_from_us=(T0 + 10) * SECOND,
                                      valid_until_us=(T0 + 10) * SECOND)
            assert caught.value.violations.keys() == {"merchant_id", "key_id", "valid_until"}
            with pytest.raises(InvalidKeyRequest) as caught:
                await ring.create_key("m_acme", valid_from_us=(T0 - 100) * SECOND, valid_until_us=(T0 - 1) * SECOND)
            assert caught.value.violations == {"valid_until": "is in the past: the key would never verify"}
            with pytest.raises(InvalidKeyRequest) as caught:
                await ring.create_key("m_acme", "x" * 65)
            assert list(caught.value.violations) == ["key_id"]
            with pytest.raises(InvalidKeyRequest) as caught:
                await ring.revoke_key("", "")
            assert caught.value.violations.keys() == {"merchant_id", "key_id"}
            with pytest.raises(KeyNotFound):
                await ring.revoke_key("m_acme", "k9")
            assert await ring.list_keys() == []

        async with key_ring(database, signing, clock, sealer=None) as (ring, _):
            with pytest.raises(MasterKeyNotConfigured):
                await ring.create_key("m_acme", "k1")

    asyncio.run(scenario())
