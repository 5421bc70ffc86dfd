-- Session leases (owner node, epoch, expiry) and the epoch each event was written under.
-- lease_epoch only grows: it numbers the session's owners, and stays when a lease is released so
-- that the next owner's epoch is new. events.epoch is 0 for events appended without a lease.

ALTER TABLE sessions ADD COLUMN lease_node TEXT;
ALTER TABLE sessions ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN lease_expires INTEGER;
CREATE INDEX sessions_lease_node ON sessions (lease_node) WHERE lease_node IS NOT NULL;

ALTER TABLE events ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
