"""Key management through SwitchAdmin on a live switch over loopback: the token, keys that sign payments
from creation until revocation, listings without secrets, each refusal's status and reason, and the
`payswitch keys` command.

The switch gets a master key, so its own KeyRing stores and seals keys in its database.
"""

import json
import logging

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from live_switch import LiveSwitch, card, rpc_error

from payswitch.client import SyncSwitchClient, error_details
from payswitch.keys.sealing import MasterKey
from payswitch.v1 import admin_pb2, admin_pb2_grpc

TOKEN = "operator-token-0123456789"
ROUTES = 'version = "v1"\n[[rules]]\nname = "everyone"\nchannels = ["sim"]\n'


@pytest.fixture
def keys_switch(tmp_path):
    switch = LiveSwitch(tmp_path, routing=ROUTES, admin_token=TOKEN, master_key=MasterKey.generate("mk1"),
                        keyless_merchants=("m_gamma",)).start()
    channel = grpc.insecure_channel(switch.address)
    clients = []

    def client_for(merchant, key_id, secret):
        client = SyncSwitchClient(switch.address, merchant, key_id, secret)
        clients.append(client)
        return client

    switch.client_for = client_for
    yield switch, admin_pb2_grpc.SwitchAdminStub(channel)
    for client in clients:
        client.close()
    channel.close()
    switch.close()


def bearer(token: str = TOKEN):
    return (("authorization", f"Bearer {token}"),)


def at(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def refusal(call) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    error = rpc_error(call)
    details = error_details(error)
    return error.code(), details.reason, details.field_violations


def authorized(client, reference: str) -> bool:
    return client.authorize(100, "USD", card=card(), merchant_reference=reference).payment.payment_id != ""


KEY_CALLS = (("CreateKey", admin_pb2.CreateKeyRequest(merchant_id="m_gamma")),
             ("ListKeys", admin_pb2.ListKeysRequest()),
             ("RevokeKey", admin_pb2.RevokeKeyRequest(merchant_id="m_alpha", key_id="k1")))


@pytest.mark.parametrize("metadata, reason", [
    ((), "admin_token_missing"),
    (bearer("operator-token-0123456780"), "admin_token_invalid"),
])
def test_key_calls_need_the_operator_token(keys_switch, metadata, reason):
    switch, admin = keys_switch
    for method, request in KEY_CALLS:
        code, got, _ = refusal(lambda: getattr(admin, method)(request, metadata=metadata, timeout=5))
        assert (code, got) == (grpc.StatusCode.UNAUTHENTICATED, reason), method
    assert [k.source for k in admin.ListKeys(admin_pb2.ListKeysRequest(), metadata=bearer(), timeout=5).keys] == [
        "config", "config"]  # nothing was created


def test_a_created_key_signs_payments_until_it_is_revoked(keys_switch):
    switch, admin = keys_switch
    first = admin.CreateKey(admin_pb2.CreateKeyRequest(merchant_id="m_gamma", key_id="2025-01"), metadata=bearer(),
                            timeout=5)
    second = admin.CreateKey(admin_pb2.CreateKeyRequest(merchant_id="m_gamma"), metadata=bearer(), timeout=5)
    assert (first.key.key_id, first.key.status, first.key.source, first.key.in_use) == (
        "2025-01", "active", "store", True)
    assert second.key.key_id.startswith("k_") and len(first.secret) == len(second.secret) == 32
    assert not first.key.HasField("valid_until") and first.key.HasField("valid_from")

    old = switch.client_for("m_gamma", "2025-01", first.secret)
    new = switch.client_for("m_gamma", second.key.key_id, second.secret)
    assert authorized(old, "old-key") and authorized(new, "new-key")  # both at once: rotation

    revoked = admin.RevokeKey(admin_pb2.RevokeKeyRequest(merchant_id="m_gamma", key_id="2025-01"), metadata=bearer(),
                              timeout=5)
    assert (revoked.status, revoked.in_use, revoked.HasField("revoked_at")) == ("revoked", False, True)
    error = rpc_error(lambda: old.authorize(100, "USD", card=card(), merchant_reference="after-revoke"))
    assert (error.code(), error_details(error).reason) == (grpc.StatusCode.UNAUTHENTICATED, "unknown_key")
    assert authorized(new, "still-fine")
    assert authorized(switch.client("m_alpha"), "configured-key")  # configured keys keep working


def test_listing_shows_windows_and_sources_but_never_a_secret(keys_switch):
    switch, admin = keys_switch
    now = switch.app.keys.now_us() / 1e6
    created = admin.CreateKey(admin_pb2.CreateKeyRequest(merchant_id="m_alpha", key_id="next", valid_from=at(now + 60),
                                                         valid_until=at(now + 3600)), metadata=bearer(), timeout=5)
    listed = admin.ListKeys(admin_pb2.ListKeysRequest(merchant_id="m_alpha"), metadata=bearer(), timeout=5)
    assert [(k.key_id, k.source, k.status, k.in_use) for k in listed.keys] == [
        ("k1", "config", "active", True), ("next", "store", "active", False)]
    assert listed.keys[1].valid_until.seconds == int(now + 3600)
    assert not listed.keys[0].HasField("valid_from")
    everyone = admin.ListKeys(admin_pb2.ListKeysRequest(), metadata=bearer(), timeout=5)
    assert {k.merchant_id for k in everyone.keys} == {"m_alpha", "m_beta"}
    for response in (listed, everyone):
        wire = response.SerializeToString()
        assert created.secret not in wire and created.secret.hex().encode() not in wire
        for secret in switch.secrets.values():
            assert secret not in wire


def test_each_refusal_has_its_status_reason_and_fields(keys_switch):
    switch, admin = keys_switch

    def create(**fields):
        return lambda: admin.CreateKey(admin_pb2.CreateKeyRequest(**fields), metadata=bearer(), timeout=5)

    def revoke(merchant, key_id):
        return lambda: admin.RevokeKey(admin_pb2.RevokeKeyRequest(merchant_id=merchant, key_id=key_id),
                                       metadata=bearer(), timeout=5)

    now = switch.app.keys.now_us() / 1e6
    code, reason, fields = refusal(create(merchant_id="", key_id="bad id", valid_until=at(now - 10)))
    assert (code, reason, set(fields)) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument",
                                           {"merchant_id", "key_id", "valid_until"})
    code, reason, fields = refusal(create(merchant_id="m_gamma", valid_from=at(now + 20), valid_until=at(now + 10)))
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, {"valid_until": "must be after valid_from"})
    far = Timestamp(seconds=10**12)
    code, reason, fields = refusal(create(merchant_id="m_gamma", valid_from=far))
    assert (code, list(fields)) == (grpc.StatusCode.INVALID_ARGUMENT, ["valid_from"])

    assert refusal(create(merchant_id="m_alpha", key_id="k1"))[:2] == (
        grpc.StatusCode.ALREADY_EXISTS, "key_already_exists")  # the configured key's id
    create(merchant_id="m_alpha", key_id="k2")()
    assert refusal(create(merchant_id="m_alpha", key_id="k2"))[:2] == (
        grpc.StatusCode.ALREADY_EXISTS, "key_already_exists")
    assert refusal(create(merchant_id="m_alpha", key_id="k3"))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION, "too_many_active_keys")  # configured k1 and stored k2
    assert refusal(revoke("m_alpha", "k1"))[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "key_in_configuration")
    assert refusal(revoke("m_alpha", "k9"))[:2] == (grpc.StatusCode.NOT_FOUND, "key_not_found")
    assert refusal(revoke("m_gamma", "k2"))[:2] == (grpc.StatusCode.NOT_FOUND, "key_not_found")
    code, reason, fields = refusal(revoke("", "k2"))
    assert (code, list(fields)) == (grpc.StatusCode.INVALID_ARGUMENT, ["merchant_id"])


def test_a_switch_without_a_master_key_issues_no_keys(tmp_path):
    switch = LiveSwitch(tmp_path, admin_token=TOKEN, master_key=False).start()
    try:
        with grpc.insecure_channel(switch.address) as channel:
            admin = admin_pb2_grpc.SwitchAdminStub(channel)
            code, reason, _ = refusal(lambda: admin.CreateKey(admin_pb2.CreateKeyRequest(merchant_id="m_alpha"),
                                                              metadata=bearer(), timeout=5))
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "master_key_not_configured")
    finally:
        switch.close()


def test_the_keys_command_creates_lists_and_revokes(keys_switch, monkeypatch, capsys, caplog):
    from payswitch.cli.main import main

    caplog.set_level(logging.DEBUG)
    switch, _ = keys_switch
    target = ["--target", switch.address]
    monkeypatch.delenv("PAYSWITCH_ADMIN_TOKEN", raising=False)
    assert main(["keys", "list", *target]) == 2
    assert "PAYSWITCH_ADMIN_TOKEN" in capsys.readouterr().err

    monkeypatch.setenv("PAYSWITCH_ADMIN_TOKEN", TOKEN)
    assert main(["keys", "create", "--merchant", "m_gamma", "--valid-until", "2099-01-01T00:00:00Z", *target]) == 0
    out, err = capsys.readouterr()
    created = json.loads(out)
    secret_hex = created["secret_hex"]
    key_id = created["key"]["key_id"]
    assert len(bytes.fromhex(secret_hex)) == 32 and key_id.startswith("k_")
    assert created["key"]["valid_until"] == "2099-01-01T00:00:00Z"
    assert "shown this once" in err and secret_hex not in err
    assert authorized(switch.client_for("m_gamma", key_id, bytes.fromhex(secret_hex)), "from-the-cli")

    assert main(["keys", "list", "--merchant", "m_gamma", *target]) == 0
    out = capsys.readouterr().out
    assert [(k["key_id"], k["status"], k["in_use"]) for k in json.loads(out)["keys"]] == [(key_id, "active", True)]
    assert secret_hex not in out

    assert main(["keys", "revoke", "--merchant", "m_gamma", "--key-id", key_id, *target]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "revoked"
    assert main(["keys", "revoke", "--merchant", "m_gamma", "--key-id", "nope", *target]) == 1
    assert "NOT_FOUND key_not_found" in capsys.readouterr().err
    assert main(["keys", "create", "--merchant", "bad merchant", "--key-id", "bad/id", *target]) == 1
    err = capsys.readouterr().err
    assert "INVALID_ARGUMENT invalid_argument" in err and "merchant_id:" in err and "key_id:" in err

    with pytest.raises(SystemExit) as caught:
        main(["keys", "create", "--merchant", "m_gamma", "--valid-from", "2030-01-01T00:00:00", *target])
    assert caught.value.code == 2 and "UTC offset" in capsys.readouterr().err
    monkeypatch.setenv("PAYSWITCH_ADMIN_TOKEN", "not-the-operator-token")
    assert main(["keys", "list", *target]) == 1
    assert "admin_token_invalid" in capsys.readouterr().err

    logged = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert key_id in logged and secret_hex not in logged and repr(bytes.fromhex(secret_hex)) not in logged
