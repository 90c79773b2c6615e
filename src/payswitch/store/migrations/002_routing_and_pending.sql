-- Routing is recorded per payment, and the resolver finds pending operations without a scan.
--
-- routing_version and routing_rule say which routing table and rule chose the payment's channel, so a
-- payment can be explained after the table changed. Payments written before this migration get ''.
ALTER TABLE payments ADD COLUMN routing_version TEXT NOT NULL DEFAULT '';
ALTER TABLE payments ADD COLUMN routing_rule TEXT NOT NULL DEFAULT '';

-- pending_operations: the few payments with an operation of unknown outcome. A partial index stays as
-- small as that set, whatever the table's size.
CREATE INDEX payments_pending ON payments (pending_operation_id) WHERE pending_operation_id IS NOT NULL;
