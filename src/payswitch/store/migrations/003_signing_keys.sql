-- Merchants' signing keys, managed through SwitchAdmin (docs/keys.md).
--
-- sealed_secret is the secret sealed with AES-256-GCM under a master key the database never holds,
-- bound to (merchant_id, key_id): a blob copied onto another row does not open. It is emptied when
-- the key is revoked, since a revoked key never verifies again. status is 'active' or 'revoked' (no
-- CHECK list, like the other status columns, so a new status needs no table rebuild); expiry is by
-- time alone: a key verifies while not_before_us <= now < not_after_us (NULL: no end).
-- Rows are never deleted, so a key id is never reused for a merchant.

CREATE TABLE signing_keys (
    merchant_id   TEXT    NOT NULL,
    key_id        TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    sealed_secret BLOB    NOT NULL,
    not_before_us INTEGER NOT NULL,
    not_after_us  INTEGER CHECK (not_after_us IS NULL OR not_after_us > not_before_us),
    created_at_us INTEGER NOT NULL,
    revoked_at_us INTEGER,
    PRIMARY KEY (merchant_id, key_id)
) STRICT;

-- The key ring loads the active keys at start and on every resync; revoked rows stay out of the index.
CREATE INDEX signing_keys_active ON signing_keys (merchant_id, key_id) WHERE status = 'active';
