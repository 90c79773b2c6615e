-- The card vault: card numbers sealed with AES-256-GCM, never in clear, never with a CVV.
--
-- vault_keys holds the vault's own keys, each sealed under the master key the database never holds:
-- 'data' keys seal card numbers (one is 'primary' and seals new entries; 'retired' ones still open
-- old entries until a rotation re-seals them, after which they are deleted), and the 'index' key
-- makes card fingerprints (HMAC-SHA256), so a card is found again without decrypting anything.
CREATE TABLE vault_keys (
    key_id        TEXT    NOT NULL PRIMARY KEY,
    purpose       TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    sealed_key    BLOB    NOT NULL,
    created_at_us INTEGER NOT NULL
) STRICT;

-- One row per vaulted card number: entry_id is a token ("tok_...", from Tokenize) or the id of the
-- payment that brought the number. The sealed blob names its data key (key_id repeats it for the
-- rotation's queries) and is bound to entry_id and merchant_id as associated data, so a blob copied
-- onto another row does not open. BIN, last four and expiry are kept beside it for display.
CREATE TABLE vault_cards (
    entry_id      TEXT    NOT NULL PRIMARY KEY,
    merchant_id   TEXT    NOT NULL,
    fingerprint   BLOB    NOT NULL,
    key_id        TEXT    NOT NULL REFERENCES vault_keys (key_id),
    sealed_number BLOB    NOT NULL,
    card_bin      TEXT    NOT NULL,
    card_last4    TEXT    NOT NULL,
    exp_month     INTEGER NOT NULL,
    exp_year      INTEGER NOT NULL,
    scheme        TEXT    NOT NULL,
    created_at_us INTEGER NOT NULL
) STRICT;

-- Tokenize: one token per merchant and card number.
CREATE UNIQUE INDEX vault_tokens_by_fingerprint ON vault_cards (merchant_id, fingerprint)
    WHERE entry_id LIKE 'tok\_%' ESCAPE '\';
-- Rotation: the entries still sealed under a retired key.
CREATE INDEX vault_cards_by_key ON vault_cards (key_id);

-- A payment made with a token names it; '' for payments that brought their own card number.
ALTER TABLE payments ADD COLUMN method_card_token TEXT NOT NULL DEFAULT '';
