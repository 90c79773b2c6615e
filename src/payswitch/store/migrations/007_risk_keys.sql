-- Risk rules rebuild their windows, daily sums and duplicate fingerprints from the store at start (and
-- what a reload does not carry over), so a restart does not widen a limit (docs/risk.md).
--
-- risk_card_key is the card key risk judged the payment by: the vault's fingerprint of the card number
-- or wallet token (HMAC-SHA256 under the vault's index key, the same value vault_cards.fingerprint
-- holds for a card), so no card number or wallet token is kept for it. Empty when the switch has no
-- vault (its card keys do not outlive the process) and for payments made before this migration.
ALTER TABLE payments ADD COLUMN risk_card_key BLOB NOT NULL DEFAULT x'';

-- risk_admissions: the authorizations that passed risk since an instant, oldest first. Partial, so
-- payments risk declined or never judged cost it nothing.
CREATE INDEX payments_passed_risk ON payments (created_at_us, payment_id) WHERE risk_version <> '' AND risk_rule = '';
