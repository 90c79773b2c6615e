-- Partial authorizations (AuthorizeRequest.allow_partial_authorization).
--
-- amount_minor stays what the channel authorized, which bounds captures; requested_minor is what the
-- Authorize asked for. They differ only after a partial approval the caller accepted, which
-- partial_authorization (0 or 1) says the caller may. Payments made before this migration were
-- authorized, if at all, for what they asked.
ALTER TABLE payments ADD COLUMN requested_minor INTEGER NOT NULL DEFAULT 0;
UPDATE payments SET requested_minor = amount_minor;
ALTER TABLE payments ADD COLUMN partial_authorization INTEGER NOT NULL DEFAULT 0;
