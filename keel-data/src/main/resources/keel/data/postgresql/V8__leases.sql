-- Session leases (owner node, epoch, expiry) and the epoch each event was written under.
-- They live on the session's row, so that an append's fencing (lease_node and lease_epoch) is
-- checked by the same conditional update as its expected sequence number, under the same row lock.
-- lease_epoch only grows: it numbers the session's owners, and stays when a lease is released so
-- that the next owner's epoch is new. events.epoch is 0 for events appended without a lease.

ALTER TABLE sessions
  ADD COLUMN lease_node text,
  ADD COLUMN lease_epoch bigint NOT NULL DEFAULT 0,
  ADD COLUMN lease_expires timestamptz;
CREATE INDEX sessions_lease_node ON sessions (lease_node) WHERE lease_node IS NOT NULL;

ALTER TABLE events ADD COLUMN epoch bigint NOT NULL DEFAULT 0;
