"""SwitchAdmin over loopback gRPC: the bearer token, routing reload and status, channel health, and
the pending-operations report."""

import time

import grpc
import pytest
from live_switch import TIMEOUT, LiveSwitch, card

from payswitch.client.errors import error_details
from payswitch.config import ResolverConfig
from payswitch.v1 import admin_pb2, admin_pb2_grpc, types_pb2

TOKEN = "operator-token-0123456789"
ROUTES = 'version = "{version}"\n[[rules]]\nname = "only"\nchannels = ["{channel}"]\n'


@pytest.fixture
def admin_switch(tmp_path):
    switch = LiveSwitch(tmp_path, channels=("a", "b"), routing=ROUTES.format(version="v1", channel="a"),
                        admin_token=TOKEN, channel_timeout_ms=200, timeout_delay_s=1.0,
                        resolver=ResolverConfig(interval_seconds=60, report_after_seconds=1)).start()
    channel = grpc.insecure_channel(switch.address)
    yield switch, admin_pb2_grpc.SwitchAdminStub(channel)
    channel.close()
    switch.close()


def bearer(token: str = TOKEN):
    return (("authorization", f"Bearer {token}"),)


@pytest.mark.parametrize("metadata, reason", [
    ((), "admin_token_missing"),
    ((("authorization", "Basic abc"),), "admin_token_missing"),
    (bearer("operator-token-0123456780"), "admin_token_invalid"),
])
def test_every_call_needs_the_operator_token(admin_switch, metadata, reason):
    switch, admin = admin_switch
    for call, request in ((admin.GetRouting, admin_pb2.GetRoutingRequest()),
                          (admin.ReloadRouting, admin_pb2.ReloadRoutingRequest()),
                          (admin.ListChannelHealth, admin_pb2.ListChannelHealthRequest()),
                          (admin.ListPendingOperations, admin_pb2.ListPendingOperationsRequest())):
        with pytest.raises(grpc.RpcError) as caught:
            call(request, metadata=metadata, timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_details(caught.value).reason == reason


def test_a_merchant_signature_does_not_open_the_admin_service(admin_switch):
    switch, admin = admin_switch
    metadata = switch.signer().metadata("/payswitch.v1.SwitchAdmin/GetRouting", b"")
    with pytest.raises(grpc.RpcError) as caught:
        admin.GetRouting(admin_pb2.GetRoutingRequest(), metadata=metadata, timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_reload_swaps_the_table_and_a_refused_file_names_its_problems(admin_switch):
    switch, admin = admin_switch
    status = admin.GetRouting(admin_pb2.GetRoutingRequest(), metadata=bearer(), timeout=5)
    assert (status.version, status.rules, status.bin_ranges) == ("v1", 1, 0)
    assert status.source.endswith("routes.toml")

    switch.routing_path.write_text(ROUTES.format(version="v2", channel="b"))
    reloaded = admin.ReloadRouting(admin_pb2.ReloadRoutingRequest(), metadata=bearer(), timeout=5)
    assert reloaded.version == "v2"
    payment = switch.client().authorize(100, "USD", card=card(), merchant_reference="after-reload").payment
    assert (payment.routing_version, payment.channel) == ("v2", "b")

    switch.routing_path.write_text('version = "v3"\n[[rules]]\nname = "only"\nchannels = ["b"]\ncolour = 1\n')
    with pytest.raises(grpc.RpcError) as caught:
        admin.ReloadRouting(admin_pb2.ReloadRoutingRequest(), metadata=bearer(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error_details(caught.value)
    assert details.reason == "routing_invalid"
    assert any("5" in field and "colour" in field for field in details.field_violations), details.field_violations
    assert admin.GetRouting(admin_pb2.GetRoutingRequest(), metadata=bearer(), timeout=5).version == "v2"


def test_channel_health_and_overdue_pending_operations_are_reported(admin_switch, caplog):
    switch, admin = admin_switch
    client = switch.client()
    for n in range(3):
        client.authorize(100, "USD", card=card(), merchant_reference=f"ok-{n}")
    pending = client.authorize(100, "USD", card=card(TIMEOUT), merchant_reference="slow").payment
    assert pending.status == types_pb2.PAYMENT_STATUS_PENDING

    health = {c.name: c for c in admin.ListChannelHealth(admin_pb2.ListChannelHealthRequest(), metadata=bearer(),
                                                        timeout=5).channels}
    assert set(health) == {"a", "b"}
    assert (health["a"].breaker_state, health["a"].calls, health["a"].approved, health["a"].errors) == (
        "closed", 4, 3, 1)
    assert health["a"].latency_p99_us >= health["a"].latency_p50_us > 0
    assert not health["a"].HasField("success_rate_percent")  # too few calls to judge yet

    time.sleep(1.2)  # past report_after_seconds, still short of min_age_seconds: not asked yet
    switch.call(switch.app.resolver.resolve_once())
    listed = admin.ListPendingOperations(admin_pb2.ListPendingOperationsRequest(), metadata=bearer(),
                                         timeout=5).operations
    assert [(op.payment_id, op.kind, op.channel, op.overdue, op.inquiries) for op in listed] == [
        (pending.payment_id, types_pb2.OPERATION_KIND_AUTHORIZATION, "a", True, 0)]
    reports = [r.getMessage() for r in caplog.records if "pending for" in r.getMessage()]
    assert len(reports) == 1 and pending.payment_id in reports[0]
    switch.call(switch.app.resolver.resolve_once())  # reported once, not every round
    assert len([r for r in caplog.records if "pending for" in r.getMessage()]) == 1


def test_the_admin_command_reloads_and_reports(admin_switch, monkeypatch, capsys):
    import json

    from payswitch.cli.main import main

    switch, _ = admin_switch
    target = ["--target", switch.address]
    monkeypatch.delenv("PAYSWITCH_ADMIN_TOKEN", raising=False)
    assert main(["admin", "routing", *target]) == 2
    assert "PAYSWITCH_ADMIN_TOKEN" in capsys.readouterr().err

    monkeypatch.setenv("PAYSWITCH_ADMIN_TOKEN", TOKEN)
    switch.routing_path.write_text(ROUTES.format(version="v9", channel="b"))
    assert main(["admin", "reload", *target]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "v9"
    assert main(["admin", "health", *target]) == 0
    assert [c["name"] for c in json.loads(capsys.readouterr().out)["channels"]] == ["a", "b"]

    switch.routing_path.write_text('version = "v10"\n[[rules]]\nname = "only"\n')
    assert main(["admin", "reload", *target]) == 1
    error = capsys.readouterr().err
    assert "INVALID_ARGUMENT routing_invalid" in error and "routes.toml:2: rules[0].channels" in error
    monkeypatch.setenv("PAYSWITCH_ADMIN_TOKEN", "not-the-operator-token")
    assert main(["admin", "pending", *target]) == 1
    assert "admin_token_invalid" in capsys.readouterr().err
