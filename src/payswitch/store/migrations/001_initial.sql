-- The first payswitch schema (SQLite).
--
-- Tables are STRICT so SQLite refuses a value of the wrong type instead of storing it: money is
-- INTEGER minor units and a float amount is an error, never a silently rounded REAL. Times are INTEGER
-- microseconds since the epoch, as given by the caller (the store never reads the clock). Status
-- columns hold the enum values of payments/lifecycle.py; they have no CHECK list, so adding a status
-- needs no table rebuild.

CREATE TABLE payments (
    payment_id             TEXT    NOT NULL PRIMARY KEY,
    merchant_id            TEXT    NOT NULL,
    merchant_reference     TEXT    NOT NULL,
    status                 TEXT    NOT NULL,
    currency               TEXT    NOT NULL,
    amount_minor           INTEGER NOT NULL,
    captured_minor         INTEGER NOT NULL,
    refunded_minor         INTEGER NOT NULL,
    channel                TEXT    NOT NULL,
    -- The method summary as columns, so reports can group by scheme or BIN without parsing.
    method_kind            TEXT    NOT NULL,
    method_card_bin        TEXT    NOT NULL,
    method_card_last4      TEXT    NOT NULL,
    method_exp_month       INTEGER NOT NULL,
    method_exp_year        INTEGER NOT NULL,
    method_scheme          TEXT    NOT NULL,
    method_wallet_provider TEXT    NOT NULL,
    authorization_id       TEXT    NOT NULL,
    decline_code           TEXT    NOT NULL,
    decline_message        TEXT    NOT NULL,
    pending_operation_id   TEXT,
    version                INTEGER NOT NULL,
    created_at_us          INTEGER NOT NULL,
    updated_at_us          INTEGER NOT NULL,
    -- A last line of defence behind the state machine: no amount can go negative or over-refund.
    CHECK (amount_minor >= 0 AND captured_minor >= 0 AND refunded_minor >= 0),
    CHECK (refunded_minor <= captured_minor)
) STRICT;

-- list_payments: one merchant, newest first, (created_at_us, payment_id) as the paging cursor.
CREATE INDEX payments_by_merchant_created
    ON payments (merchant_id, created_at_us DESC, payment_id DESC);

CREATE TABLE operations (
    operation_id      TEXT    NOT NULL PRIMARY KEY,
    payment_id        TEXT    NOT NULL REFERENCES payments (payment_id),
    kind              TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    amount_minor      INTEGER NOT NULL CHECK (amount_minor >= 0),
    currency          TEXT    NOT NULL,
    channel_reference TEXT    NOT NULL,
    decline_code      TEXT    NOT NULL,
    decline_message   TEXT    NOT NULL,
    idempotency_key   TEXT    NOT NULL,
    created_at_us     INTEGER NOT NULL,
    updated_at_us     INTEGER NOT NULL
) STRICT;

-- get_operations: a payment's operations, oldest first.
CREATE INDEX operations_by_payment ON operations (payment_id, created_at_us, operation_id);

-- Append-only: a posting is never updated or deleted, corrections are new transactions.
CREATE TABLE postings (
    posting_id     INTEGER NOT NULL PRIMARY KEY,
    transaction_id TEXT    NOT NULL,
    payment_id     TEXT    NOT NULL REFERENCES payments (payment_id),
    account        TEXT    NOT NULL,
    currency       TEXT    NOT NULL,
    amount_minor   INTEGER NOT NULL,
    created_at_us  INTEGER NOT NULL
) STRICT;

-- ledger_imbalances groups by transaction and currency; covering, so the table itself is not read.
CREATE INDEX postings_by_transaction ON postings (transaction_id, currency, amount_minor);
-- ledger_balances groups by payment, account and currency; covering as well.
CREATE INDEX postings_by_payment ON postings (payment_id, account, currency, amount_minor);

CREATE TABLE idempotency (
    merchant_id   TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    method        TEXT    NOT NULL,
    fingerprint   BLOB    NOT NULL,
    state         TEXT    NOT NULL,
    response      BLOB,
    -- Not a foreign key: the key is reserved before the payment it creates may exist.
    payment_id    TEXT    NOT NULL,
    created_at_us INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, key)
) STRICT;

-- purge_idempotency: finished records older than a bound.
CREATE INDEX idempotency_by_state_created ON idempotency (state, created_at_us);
