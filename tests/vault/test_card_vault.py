"""The card vault through the switch's API on loopback and in its SQLite file: tokens, payments by
token, card numbers sealed (never in clear, not even in the WAL), rows that cannot be swapped, and a
data-key rotation while payments flow."""

import asyncio
import sqlite3

import grpc
import pytest
from live_switch import APPROVE, DO_NOT_HONOR, LiveSwitch, card, rpc_error

from payswitch.client.errors import error_details
from payswitch.keys.sealing import SealingError
from payswitch.v1 import admin_pb2, admin_pb2_grpc, switch_pb2, types_pb2

TOKEN = "operator-token-0123456789"
PANS = (APPROVE, "5555555555554444", "378282246310005", DO_NOT_HONOR)


@pytest.fixture
def live(tmp_path):
    switch = LiveSwitch(tmp_path, admin_token=TOKEN).start()
    yield switch
    switch.close()


def tokenize(client, number: str, **fields) -> switch_pb2.TokenizeResponse:
    card_fields = dict(number=number, exp_month=11, exp_year=card().exp_year)
    card_fields.update(fields)
    return client.call("Tokenize", switch_pb2.TokenizeRequest(card=types_pb2.Card(**card_fields)))


def pay_with_token(client, token: str, reference: str, cvv: str = "") -> types_pb2.Payment:
    request = switch_pb2.AuthorizeRequest(
        idempotency_key=f"key-{reference}", merchant_reference=reference,
        amount=types_pb2.Money(amount_minor=1_000, currency="USD"),
        card_token=switch_pb2.CardToken(token=token, cvv=cvv))
    return client.call("Authorize", request).payment


def database_bytes(live) -> bytes:
    """The database file with its WAL and shared-memory files, as they lie on disk."""
    folder = live.folder
    return b"".join(path.read_bytes() for path in sorted(folder.glob("switch.db*")))


def test_a_card_gets_one_token_per_merchant_and_pays_by_it(live):
    alpha, beta = live.client("m_alpha"), live.client("m_beta")
    first, again = tokenize(alpha, APPROVE), tokenize(alpha, APPROVE)
    assert first.token.startswith("tok_") and again.token == first.token
    assert (first.card.bin, first.card.last4, first.card.scheme) == ("424242", "4242", "visa")
    assert tokenize(beta, APPROVE).token != first.token

    payment = pay_with_token(alpha, first.token, "by-token", cvv="123")
    assert payment.status == types_pb2.PAYMENT_STATUS_AUTHORIZED
    assert (payment.method.card.token, payment.method.card.bin, payment.method.card.last4) == (
        first.token, "424242", "4242")
    # The channel got the vaulted number: a declining card's token is declined.
    declined = pay_with_token(alpha, tokenize(alpha, DO_NOT_HONOR).token, "declined")
    assert (declined.status, declined.decline_code) == (types_pb2.PAYMENT_STATUS_DECLINED, "do_not_honor")


def test_a_reissued_card_keeps_its_token_and_takes_the_new_expiry(live):
    alpha = live.client("m_alpha")
    year = card().exp_year
    first = tokenize(alpha, APPROVE, exp_month=11, exp_year=year)
    reissued = tokenize(alpha, APPROVE, exp_month=3, exp_year=year + 2)
    assert reissued.token == first.token
    assert (reissued.card.exp_month, reissued.card.exp_year) == (3, year + 2)
    opened = live.call(live.app.vault.reveal("m_alpha", [first.token]))[first.token]
    assert (opened.exp_month, opened.exp_year) == (3, year + 2)
    assert pay_with_token(alpha, first.token, "after-reissue").method.card.exp_year == year + 2


@pytest.mark.parametrize("whose", ["unknown", "another merchant's"])
def test_a_token_the_merchant_does_not_own_is_not_found_and_changes_nothing(live, whose):
    alpha = live.client("m_alpha")
    token = "tok_01m85k3jg7y0k2c2rj9tqxy0by" if whose == "unknown" else tokenize(live.client("m_beta"), APPROVE).token
    error = rpc_error(lambda: pay_with_token(alpha, token, "not-mine"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error_details(error).reason == "token_not_found"
    assert alpha.list_payments().payments == []


def test_tokenize_refuses_a_cvv_and_a_bad_card_naming_the_field(live):
    alpha = live.client("m_alpha")
    for fields, field in (({"cvv": "123"}, "card.cvv"), ({"number": "4242424242424241"}, "card.number")):
        error = rpc_error(lambda: tokenize(alpha, **{"number": APPROVE, **fields}))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in error_details(error).field_violations


def test_card_numbers_lie_sealed_in_the_database_and_its_wal(live):
    alpha = live.client("m_alpha")
    for n, number in enumerate(PANS):
        alpha.authorize(500, "USD", card=card(number, cvv="7391"), merchant_reference=f"p-{n}")
        tokenize(alpha, number)
    entries = live.call(live.app.store.get_vault_entries(
        [p.payment_id for p in alpha.list_payments().payments]))
    assert len(entries) == len(PANS)
    stored = database_bytes(live)
    for number in PANS:
        assert number.encode() not in stored
    assert b"7391" not in stored


def test_a_sealed_number_copied_onto_another_row_does_not_open(live):
    alpha = live.client("m_alpha")
    first, second = tokenize(alpha, APPROVE).token, tokenize(alpha, "5555555555554444").token
    with sqlite3.connect(live.database) as raw:
        blobs = dict(raw.execute("SELECT entry_id, sealed_number FROM vault_cards WHERE entry_id IN (?, ?)",
                                 (first, second)))
        raw.execute("UPDATE vault_cards SET sealed_number = ? WHERE entry_id = ?", (blobs[second], first))
    with pytest.raises(SealingError):
        live.call(live.app.vault.reveal("m_alpha", [first]))
    assert live.call(live.app.vault.reveal("m_alpha", [second]))[second].number.reveal() == "5555555555554444"


def test_rotation_reseals_every_card_while_payments_flow(live):
    alpha = live.client("m_alpha")
    tokens = [tokenize(alpha, number).token for number in PANS[:3]]
    old_key = live.app.vault.primary_key_id
    admin = admin_pb2_grpc.SwitchAdminStub(grpc.insecure_channel(live.address))

    async def pay_during_rotation():
        async with live.async_client() as client:
            payments = [client.authorize(100 + n, "USD", card=card(), merchant_reference=f"during-{n}")
                        for n in range(30)]
            rotation = asyncio.to_thread(admin.RotateVaultKey, admin_pb2.RotateVaultKeyRequest(),
                                         metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=10)
            return await asyncio.gather(rotation, *payments)

    report, *responses = asyncio.run(pay_during_rotation())
    assert all(r.payment.status == types_pb2.PAYMENT_STATUS_AUTHORIZED for r in responses)
    assert report.primary_key_id != old_key and old_key in report.deleted_key_ids
    assert report.resealed >= 3
    with sqlite3.connect(live.database) as raw:
        assert {key for (key,) in raw.execute("SELECT DISTINCT key_id FROM vault_cards")} == {report.primary_key_id}
        assert raw.execute("SELECT COUNT(*) FROM vault_keys WHERE key_id = ?", (old_key,)).fetchone() == (0,)
    # Every token still pays after the rotation.
    for n, token in enumerate(tokens):
        assert pay_with_token(alpha, token, f"after-{n}").status == types_pb2.PAYMENT_STATUS_AUTHORIZED


def test_without_a_master_key_the_switch_keeps_no_cards(tmp_path):
    live = LiveSwitch(tmp_path, master_key=False).start()
    try:
        alpha = live.client("m_alpha")
        assert alpha.authorize(500, "USD", card=card(), merchant_reference="plain").payment.status == \
            types_pb2.PAYMENT_STATUS_AUTHORIZED
        error = rpc_error(lambda: tokenize(alpha, APPROVE))
        assert (error.code(), error_details(error).reason) == (grpc.StatusCode.FAILED_PRECONDITION,
                                                               "vault_not_configured")
        with sqlite3.connect(live.database) as raw:
            assert raw.execute("SELECT COUNT(*) FROM vault_cards").fetchone() == (0,)
    finally:
        live.close()
