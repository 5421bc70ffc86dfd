-- Revision status and change approval (PostgreSQL): the same columns as the SQLite store's V3. A
-- revision is active (in force), pending (a widening change waiting for an approver), rejected, or
-- superseded.

ALTER TABLE revisions ADD COLUMN status text NOT NULL DEFAULT 'active';
-- the review against the revision active when it was applied: JSON arrays of reasons
ALTER TABLE revisions ADD COLUMN widening text NOT NULL DEFAULT '[]';
ALTER TABLE revisions ADD COLUMN narrowing text NOT NULL DEFAULT '[]';
-- the earlier revision a rollback restores
ALTER TABLE revisions ADD COLUMN rollback_of integer;
-- when it became active, if it ever did (a rollback may only return to such a revision)
ALTER TABLE revisions ADD COLUMN activated_at timestamptz;
-- who moved it out of pending, when, and why
ALTER TABLE revisions ADD COLUMN decided_by text;
ALTER TABLE revisions ADD COLUMN decided_at timestamptz;
ALTER TABLE revisions ADD COLUMN reason text;

-- Before this migration the newest revision was in force and every revision had been, in turn.
UPDATE revisions SET activated_at = applied_at;
UPDATE revisions SET status = 'superseded'
  WHERE number < (SELECT max(number) FROM revisions r WHERE r.kind = revisions.kind AND r.name = revisions.name);

CREATE UNIQUE INDEX revisions_one_active ON revisions (kind, name) WHERE status = 'active';
CREATE UNIQUE INDEX revisions_one_pending ON revisions (kind, name) WHERE status = 'pending';
CREATE INDEX revisions_by_status ON revisions (kind, status, name);
