"""SqliteStore against real files: Change semantics, group commit, durability settings, restart."""

import asyncio
import dataclasses
import sqlite3
import threading
from importlib.resources import files

import pytest

from payswitch.payments.lifecycle import OperationKind, OperationStatus, PaymentStatus
from payswitch.store import migrations
from payswitch.store import sqlite as sqlite_store
from payswitch.store.base import (AccountBalance, Change, IdempotencyConflict, IdempotencyRecord, IdempotencyState,
                                  LedgerTotals, MethodSummary, OperationRecord, PaymentRecord, Posting, StaleWrite,
                                  StoreClosed, StoreError)
from payswitch.store.sqlite import SqliteStore

MERCHANT = "m-1"


def payment(payment_id="p-1", *, merchant_id=MERCHANT, created_at_us=1_000, version=1, **fields) -> PaymentRecord:
    values = dict(
        payment_id=payment_id, merchant_id=merchant_id, merchant_reference=f"ref-{payment_id}",
        status=PaymentStatus.AUTHORIZED, currency="EUR", amount_minor=1_250, captured_minor=0, refunded_minor=0,
        channel="sim", method=MethodSummary(kind="card", card_bin="424242", card_last4="4242", exp_month=12,
                                            exp_year=2031, scheme="visa"),
        authorization_id="auth-1", decline_code="", decline_message="", pending_operation_id=None,
        version=version, created_at_us=created_at_us, updated_at_us=created_at_us, requested_minor=1_250)
    values.update(fields)
    return PaymentRecord(**values)


def operation(operation_id="o-1", payment_id="p-1", **fields) -> OperationRecord:
    values = dict(
        operation_id=operation_id, payment_id=payment_id, kind=OperationKind.AUTHORIZATION,
        status=OperationStatus.SUCCEEDED, amount_minor=1_250, currency="EUR", channel_reference="ch-ref",
        decline_code="", decline_message="", idempotency_key="idem-1", created_at_us=1_000, updated_at_us=1_000)
    values.update(fields)
    return OperationRecord(**values)


def idempotency(key="idem-1", *, state=IdempotencyState.IN_PROGRESS, created_at_us=1_000,
                response=None) -> IdempotencyRecord:
    return IdempotencyRecord(merchant_id=MERCHANT, key=key, method="Authorize", fingerprint=b"\x00fp\xff",
                             state=state, response=response, payment_id="p-1", created_at_us=created_at_us)


def hold_postings(payment_id="p-1", amount=1_250) -> tuple[Posting, ...]:
    return (Posting(f"t-{payment_id}", payment_id, "channel:sim:authorized", "EUR", amount, 1_000),
            Posting(f"t-{payment_id}", payment_id, f"merchant:{MERCHANT}:authorized", "EUR", -amount, 1_000))


def run_with_store(path, scenario, **options):
    """Opens a store on `path`, runs `scenario(store)` and always closes it."""
    async def main():
        store = SqliteStore(str(path), **options)
        await store.open()
        try:
            return await scenario(store)
        finally:
            await store.close()
    return asyncio.run(main())


def test_every_field_round_trips(tmp_path):
    stored = payment(status=PaymentStatus.PARTIALLY_REFUNDED, amount_minor=9_999_999_999_999, captured_minor=7_000,
                     refunded_minor=2_000, merchant_reference="order #7 ü", authorization_id="A-77",
                     decline_code="05", decline_message="do not honour", pending_operation_id="o-9", version=4,
                     created_at_us=1_700_000_000_123_456, updated_at_us=1_700_000_000_999_999,
                     method=MethodSummary(kind="wallet", card_bin="411111", card_last4="1111", exp_month=2,
                                          exp_year=2030, scheme="visa", wallet_provider="apple_pay"),
                     requested_minor=10_000_000_000_000, partial_authorization=True)
    op = operation(kind=OperationKind.REFUND, status=OperationStatus.DECLINED, amount_minor=2_000,
                   decline_code="51", decline_message="insufficient funds", created_at_us=5, updated_at_us=6)
    started = operation("o-2", kind=OperationKind.REVERSAL, status=OperationStatus.PENDING, created_at_us=7,
                        updated_at_us=7)
    record = idempotency(state=IdempotencyState.DONE, response=b"\x08\x01response")

    async def scenario(store):
        await store.apply(Change(payment=stored, operation=op, next_operation=started, postings=hold_postings(),
                                 idempotency=record))
        return (await store.get_payment(MERCHANT, "p-1"), await store.get_operations("p-1"),
                await store.get_idempotency(MERCHANT, "idem-1"), await store.ledger_balances(),
                await store.get_payment("another-merchant", "p-1"), await store.get_idempotency(MERCHANT, "nope"))

    got_payment, got_operations, got_idempotency, balances, foreign, missing = run_with_store(
        tmp_path / "s.db", scenario)
    assert got_payment == stored
    assert got_operations == [op, started]
    assert got_idempotency == record
    assert balances == [AccountBalance("p-1", "channel:sim:authorized", "EUR", 1_250),
                        AccountBalance("p-1", f"merchant:{MERCHANT}:authorized", "EUR", -1_250)]
    assert foreign is None and missing is None


def test_update_with_the_wrong_version_is_stale_and_changes_nothing(tmp_path):
    async def scenario(store):
        await store.apply(Change(payment=payment(), operation=operation()))
        captured = payment(status=PaymentStatus.CAPTURED, captured_minor=1_250, version=3)
        with pytest.raises(StaleWrite):
            await store.apply(Change(payment=captured, expected_version=2,
                                     operation=operation("o-2", kind=OperationKind.CAPTURE),
                                     postings=hold_postings(), idempotency=idempotency("idem-2")))
        unchanged = (await store.get_payment(MERCHANT, "p-1"), await store.get_operations("p-1"),
                     await store.ledger_totals(), await store.get_idempotency(MERCHANT, "idem-2"))
        await store.apply(Change(payment=captured, expected_version=1))
        return unchanged, await store.get_payment(MERCHANT, "p-1")

    (stored, operations, totals, key), updated = run_with_store(tmp_path / "s.db", scenario)
    assert stored == payment() and operations == [operation()]
    assert totals == LedgerTotals(transactions=0, postings=0) and key is None
    assert updated.status is PaymentStatus.CAPTURED and updated.version == 3


def test_inserting_an_existing_payment_is_stale(tmp_path):
    async def scenario(store):
        await store.apply(Change(payment=payment()))
        with pytest.raises(StaleWrite):
            await store.apply(Change(payment=payment(amount_minor=1)))
        return await store.get_payment(MERCHANT, "p-1")

    assert run_with_store(tmp_path / "s.db", scenario).amount_minor == 1_250


def test_an_idempotency_conflict_rolls_back_only_its_own_change(tmp_path):
    async def scenario(store):
        await store.apply(Change(idempotency=idempotency("taken")))
        commits_before = store.commit_count
        results = await store.apply_many([
            Change(payment=payment("p-a")),
            Change(payment=payment("p-b"), postings=hold_postings("p-b"), idempotency=idempotency("taken")),
            Change(payment=payment("p-c"), idempotency=idempotency("fresh")),
        ])
        return (results, store.commit_count - commits_before, await store.all_payments(),
                await store.ledger_totals(), await store.get_idempotency(MERCHANT, "fresh"))

    results, commits, payments, totals, fresh = run_with_store(tmp_path / "s.db", scenario)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], IdempotencyConflict)
    assert commits == 1
    assert [p.payment_id for p in payments] == ["p-a", "p-c"]
    assert totals.postings == 0
    assert fresh.state is IdempotencyState.IN_PROGRESS


def test_concurrent_callers_in_one_batch_fail_alone(tmp_path):
    async def scenario(store):
        await store.apply(Change(idempotency=idempotency("taken")))
        changes = [Change(payment=payment(f"p-{n}")) for n in range(20)]
        changes[7] = Change(payment=payment("p-7"), idempotency=idempotency("taken"))
        results = await asyncio.gather(*(store.apply(change) for change in changes), return_exceptions=True)
        return results, await store.all_payments()

    results, payments = run_with_store(tmp_path / "s.db", scenario)
    assert isinstance(results[7], IdempotencyConflict)
    assert all(result is None for n, result in enumerate(results) if n != 7)
    assert sorted(p.payment_id for p in payments) == sorted(f"p-{n}" for n in range(20) if n != 7)


def test_apply_many_reports_each_change(tmp_path):
    async def scenario(store):
        await store.apply(Change(payment=payment("p-1")))
        results = await store.apply_many([
            Change(payment=payment("p-2")),
            Change(payment=payment("p-1", version=9), expected_version=5),
            Change(operation=operation("o-1", payment_id="no-such-payment")),
            Change(payment=payment("p-1", version=2, status=PaymentStatus.VOIDED), expected_version=1),
        ])
        return results, await store.all_payments()

    results, payments = run_with_store(tmp_path / "s.db", scenario)
    assert results[0] is None and results[3] is None
    assert isinstance(results[1], StaleWrite)
    assert type(results[2]) is StoreError and "FOREIGN KEY" in str(results[2])
    assert {(p.payment_id, p.status, p.version) for p in payments} == {
        ("p-1", PaymentStatus.VOIDED, 2), ("p-2", PaymentStatus.AUTHORIZED, 1)}


def test_apply_many_larger_than_a_batch_is_split_but_complete(tmp_path):
    async def scenario(store):
        results = await store.apply_many([Change(payment=payment(f"p-{n:03}")) for n in range(25)])
        return results, store.commit_count, len(await store.all_payments())

    results, commits, count = run_with_store(tmp_path / "s.db", scenario, max_batch=10)
    assert results == [None] * 25 and count == 25
    assert commits == 3


def test_concurrent_applies_are_group_committed(tmp_path):
    async def scenario(store):
        changes = [Change(payment=payment(f"p-{n:03}"), operation=operation(f"o-{n:03}", f"p-{n:03}"),
                          postings=hold_postings(f"p-{n:03}")) for n in range(200)]
        before = store.commit_count
        await asyncio.gather(*(store.apply(change) for change in changes))
        return store.commit_count - before, await store.all_payments(), await store.ledger_totals()

    commits, payments, totals = run_with_store(tmp_path / "s.db", scenario)
    assert len(payments) == 200 and totals == LedgerTotals(transactions=200, postings=400)
    assert 1 <= commits < 200


def test_data_survives_close_and_reopen(tmp_path):
    path = tmp_path / "s.db"

    async def write(store):
        await store.apply(Change(payment=payment(), operation=operation(), postings=hold_postings(),
                                 idempotency=idempotency()))

    async def read(store):
        return (await store.get_payment(MERCHANT, "p-1"), await store.get_operations("p-1"),
                await store.get_idempotency(MERCHANT, "idem-1"), await store.ledger_totals())

    run_with_store(path, write)
    for _ in range(3):
        stored, operations, key, totals = run_with_store(path, read)
        assert stored == payment() and operations == [operation()] and key == idempotency()
        assert totals == LedgerTotals(transactions=1, postings=2)
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT version, name FROM schema_migrations").fetchall() == [
            (1, "initial"), (2, "routing_and_pending"), (3, "signing_keys"), (4, "card_vault"), (5, "risk_decisions"),
                (6, "partial_authorizations"), (7, "risk_keys")]


def test_close_commits_what_was_queued(tmp_path):
    path = tmp_path / "s.db"

    async def scenario():
        store = SqliteStore(str(path))
        await store.open()
        pending = [asyncio.ensure_future(store.apply(Change(payment=payment(f"p-{n}")))) for n in range(50)]
        await asyncio.sleep(0)  # every apply is queued; none has necessarily committed
        await store.close()
        return await asyncio.gather(*pending)

    assert asyncio.run(scenario()) == [None] * 50
    assert len(run_with_store(path, lambda store: store.all_payments())) == 50


def test_list_payments_is_newest_first_filtered_and_paged(tmp_path):
    async def scenario(store):
        # Three payments share a timestamp so the payment_id tie-break is exercised.
        stamps = {"a": 100, "b": 200, "c": 200, "d": 200, "e": 300, "f": 400}
        await store.apply_many([Change(payment=payment(pid, created_at_us=at)) for pid, at in stamps.items()]
                               + [Change(payment=payment("other", merchant_id="m-2", created_at_us=250))])
        everything = await store.list_payments(MERCHANT, None, None, 100, None)
        window = await store.list_payments(MERCHANT, 200, 400, 100, None)
        pages, cursor = [], None
        while page := await store.list_payments(MERCHANT, None, None, 2, cursor):
            pages.append([p.payment_id for p in page])
            cursor = (page[-1].created_at_us, page[-1].payment_id)
        return everything, window, pages

    everything, window, pages = run_with_store(tmp_path / "s.db", scenario)
    assert [p.payment_id for p in everything] == ["f", "e", "d", "c", "b", "a"]
    assert [p.payment_id for p in window] == ["e", "d", "c", "b"]
    assert pages == [["f", "e"], ["d", "c"], ["b", "a"]]


def test_purge_removes_only_old_finished_keys(tmp_path):
    async def scenario(store):
        await store.apply_many([
            Change(idempotency=idempotency("old-done", state=IdempotencyState.DONE, created_at_us=10, response=b"r")),
            Change(idempotency=idempotency("new-done", state=IdempotencyState.DONE, created_at_us=99, response=b"r")),
            Change(idempotency=idempotency("old-running", created_at_us=10)),
        ])
        purged = await store.purge_idempotency(50)
        left = [await store.get_idempotency(MERCHANT, key) for key in ("old-done", "new-done", "old-running")]
        return purged, [record is not None for record in left], await store.purge_idempotency(50)

    assert run_with_store(tmp_path / "s.db", scenario) == (1, [False, True, True], 0)


def test_finishing_a_key_replaces_its_in_progress_record(tmp_path):
    async def scenario(store):
        await store.apply(Change(idempotency=idempotency()))
        done = idempotency(state=IdempotencyState.DONE, response=b"answer")
        await store.apply(Change(idempotency=done))
        return done, await store.get_idempotency(MERCHANT, "idem-1")

    done, stored = run_with_store(tmp_path / "s.db", scenario)
    assert stored == done


def test_the_file_is_durable_wal_with_synchronous_full(tmp_path):
    path = tmp_path / "s.db"

    async def settings(store):
        return store.connection_settings

    settings = run_with_store(path, settings)
    assert settings.journal_mode == "wal" and settings.synchronous == "FULL" and settings.foreign_keys
    assert settings.busy_timeout_ms > 0
    with sqlite3.connect(path) as raw:  # WAL is a property of the file, not only of the connection
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_float_money_is_refused_by_the_schema(tmp_path):
    async def scenario(store):
        with pytest.raises(StoreError, match="REAL"):
            await store.apply(Change(payment=payment(amount_minor=12.5)))
        return await store.all_payments()

    assert run_with_store(tmp_path / "s.db", scenario) == []


def test_calls_after_close_raise_store_closed(tmp_path):
    async def scenario():
        store = SqliteStore(str(tmp_path / "s.db"))
        with pytest.raises(StoreClosed):
            await store.apply(Change(payment=payment()))
        await store.open()
        await store.close()
        await store.close()  # closing twice is harmless
        with pytest.raises(StoreClosed):
            await store.apply(Change(payment=payment()))
        with pytest.raises(StoreClosed):
            await store.apply_many([Change(payment=payment())])
        with pytest.raises(StoreClosed):
            await store.get_payment(MERCHANT, "p-1")
        with pytest.raises(StoreClosed):
            await store.purge_idempotency(0)

    asyncio.run(scenario())


def test_a_transaction_that_cannot_start_fails_its_whole_batch_and_the_store_recovers(tmp_path):
    path = tmp_path / "s.db"
    run_with_store(path, lambda store: store.all_payments())  # creates the schema

    async def scenario(store):
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock too long
        try:
            results = await store.apply_many([Change(payment=payment("p-1")), Change(payment=payment("p-2"))])
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await store.apply(Change(payment=payment("p-3")))
        return results, [p.payment_id for p in await store.all_payments()]

    results, stored = run_with_store(path, scenario, busy_timeout_ms=50)
    assert all(type(result) is StoreError and "not committed" in str(result) for result in results)
    assert stored == ["p-3"]


def test_migrations_are_discovered_from_the_package_and_guarded(tmp_path):
    found = migrations.discover()
    assert [(m.version, m.name) for m in found] == [
        (1, "initial"), (2, "routing_and_pending"), (3, "signing_keys"), (4, "card_vault"), (5, "risk_decisions"),
                (6, "partial_authorizations"), (7, "risk_keys")]
    assert (files("payswitch.store") / "migrations" / "001_initial.sql").is_file()

    applied = {m.version: m.checksum for m in found}
    assert migrations.pending(found, applied) == []
    with pytest.raises(migrations.MigrationError, match="changed after"):
        migrations.pending(found, {1: "edited"})
    with pytest.raises(migrations.MigrationError, match="newer"):
        migrations.pending(found, {**applied, 99: "x"})

    connection = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    try:
        assert migrations.migrate_sqlite(connection) == found
        assert migrations.migrate_sqlite(connection) == []
        connection.execute("UPDATE schema_migrations SET checksum = 'from an edited file'")
        with pytest.raises(migrations.MigrationError, match="changed after"):
            migrations.migrate_sqlite(connection)
    finally:
        connection.close()


def test_statement_splitting_follows_sqlite_tokens():
    script = """
        -- a comment; with a semicolon
        CREATE TABLE t (x TEXT DEFAULT 'a;b');
        CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = 'c'; END;
        /* trailing; */
    """
    statements = migrations.sqlite_statements(script)
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    with pytest.raises(migrations.MigrationError, match="incomplete"):
        migrations.sqlite_statements("CREATE TABLE t (x)")


def test_two_stores_on_one_file_share_it_and_guard_versions(tmp_path):
    """As two server processes would: they migrate once between them, and see each other's commits."""
    path = str(tmp_path / "s.db")

    async def scenario():
        first, second = SqliteStore(path), SqliteStore(path)
        await asyncio.gather(first.open(), second.open())
        try:
            await first.apply(Change(payment=payment()))
            seen_by_second = await second.get_payment(MERCHANT, "p-1")
            await second.apply(Change(payment=payment(version=2, status=PaymentStatus.VOIDED), expected_version=1))
            with pytest.raises(StaleWrite):
                await first.apply(Change(payment=payment(version=2, status=PaymentStatus.CAPTURED,
                                                         captured_minor=1_250), expected_version=1))
            return seen_by_second, await first.get_payment(MERCHANT, "p-1")
        finally:
            await asyncio.gather(first.close(), second.close())

    seen_by_second, final = asyncio.run(scenario())
    assert seen_by_second == payment()
    assert final.status is PaymentStatus.VOIDED
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT COUNT(*) FROM schema_migrations").fetchone() == (len(migrations.discover()),)


def test_an_unopenable_path_fails_open_with_a_store_error(tmp_path):
    async def scenario():
        store = SqliteStore(str(tmp_path / "missing-dir" / "s.db"))
        with pytest.raises(StoreError, match="cannot open"):
            await store.open()
        with pytest.raises(StoreClosed):
            await store.get_payment(MERCHANT, "p-1")
        await store.close()

    asyncio.run(scenario())


def test_a_cancelled_open_still_stops_its_threads(tmp_path):
    async def scenario():
        store = SqliteStore(str(tmp_path / "s.db"))
        opening = asyncio.ensure_future(store.open())
        await asyncio.sleep(0)
        opening.cancel()
        finished, _ = await asyncio.wait([opening], timeout=10)
        assert finished, "a cancelled open() never finished"
        assert opening.cancelled()
        with pytest.raises(StoreClosed):
            await store.get_payment(MERCHANT, "p-1")

    asyncio.run(scenario())
    writers = [thread for thread in threading.enumerate() if thread.name == "payswitch-sqlite-writer"]
    for writer in writers:
        writer.join(timeout=5)
    assert not any(writer.is_alive() for writer in writers)


def test_idempotency_records_are_read_for_a_whole_batch_in_one_call(tmp_path):
    keys = [f"idem-{i}" for i in range(1_200)]  # more than one query's worth of parameters

    async def scenario(store):
        await store.apply(Change(payment=payment(), operation=operation()))
        await store.apply_many([Change(idempotency=idempotency(key)) for key in keys[::3]])
        return (await store.get_idempotency_many(MERCHANT, [*keys, "absent"]),
                await store.get_idempotency_many("another-merchant", keys), await store.get_idempotency_many(MERCHANT, []))

    found, foreign, empty = run_with_store(tmp_path / "s.db", scenario)
    assert sorted(found) == sorted(keys[::3])
    assert found["idem-3"] == idempotency("idem-3")
    assert foreign == {} and empty == {}


def test_one_stale_update_among_many_fails_alone_and_writes_nothing_of_itself(tmp_path):
    """The all-at-once write path refuses as a whole, then each Change is applied on its own."""
    async def scenario(store):
        await store.apply_many([Change(payment=payment(f"p-{n}"), operation=operation(f"o-{n}", f"p-{n}"))
                                for n in range(10)])
        updates = [Change(payment=payment(f"p-{n}", version=2, status=PaymentStatus.CAPTURED, captured_minor=1_250),
                          expected_version=1, operation=operation(f"o-{n}", f"p-{n}", status=OperationStatus.FAILED),
                          postings=hold_postings(f"p-{n}"), idempotency=idempotency(f"k-{n}"))
                   for n in range(10)]
        updates[4] = dataclasses.replace(updates[4], expected_version=7)
        results = await asyncio.gather(*(store.apply(change) for change in updates), return_exceptions=True)
        return results, await store.all_payments(), await store.get_operations("p-4"), await store.ledger_totals()

    results, payments, operations_of_stale, totals = run_with_store(tmp_path / "s.db", scenario)
    assert isinstance(results[4], StaleWrite)
    assert all(result is None for n, result in enumerate(results) if n != 4)
    assert {p.payment_id: p.status for p in payments}["p-4"] is PaymentStatus.AUTHORIZED
    assert sum(p.status is PaymentStatus.CAPTURED for p in payments) == 9
    assert operations_of_stale == [operation("o-4", "p-4")]
    assert totals == LedgerTotals(transactions=9, postings=18)


def test_a_database_of_the_first_schema_is_migrated_and_keeps_its_payments(tmp_path):
    path = tmp_path / "old.db"
    first = migrations.discover()[0]
    old = payment()
    values = sqlite_store._payment_values(old)[:-8]  # the first schema has no routing, token, risk or partial columns
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute(migrations.SCHEMA_MIGRATIONS_DDL)
        connection.executescript(first.sql)
        connection.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (1, 'initial', ?)",
                           (first.checksum,))
        connection.execute(f"INSERT INTO payments VALUES ({', '.join('?' * len(values))})", values)
    finally:
        connection.close()

    async def read(store):
        return await store.get_payment(MERCHANT, "p-1")

    assert run_with_store(path, read) == old
    assert (old.routing_version, old.routing_rule) == ("", "")


def test_pending_operations_lists_only_unresolved_operations_older_than_the_bound(tmp_path):
    path = tmp_path / "pending.db"
    pending = [payment(f"p-{n}", pending_operation_id=f"o-{n}", status=PaymentStatus.PENDING, routing_version="v7",
                       routing_rule="eu") for n in range(3)]

    async def scenario(store):
        for number, record in enumerate(pending):
            await store.apply(Change(payment=record, operation=operation(
                f"o-{number}", record.payment_id, status=OperationStatus.PENDING, updated_at_us=1_000 + number)))
        await store.apply(Change(payment=payment("p-done"), operation=operation("o-done", "p-done")))
        return (await store.pending_operations(1_002, 10), await store.pending_operations(10_000, 2),
                await store.get_payment(MERCHANT, "p-0"))

    older, limited, stored = run_with_store(path, scenario)
    assert [(p.payment_id, o.operation_id) for p, o in older] == [("p-0", "o-0"), ("p-1", "o-1")]
    assert [o.status for _, o in older] == [OperationStatus.PENDING] * 2
    assert [p.payment_id for p, _ in limited] == ["p-0", "p-1"]
    assert (stored.routing_version, stored.routing_rule) == ("v7", "eu")
