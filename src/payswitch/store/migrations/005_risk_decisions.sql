-- Every authorization records the risk decision made on it: the version of the risk file, and for a
-- payment risk declined the rule that declined it ('' when allowed, and for payments made before).
ALTER TABLE payments ADD COLUMN risk_version TEXT NOT NULL DEFAULT '';
ALTER TABLE payments ADD COLUMN risk_rule TEXT NOT NULL DEFAULT '';
