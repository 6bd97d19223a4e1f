-- Deleted projects announced to the experiment service (docs/operations.md, "Deleting a
-- project"). A row is written in the transaction that deletes the project and delivered until
-- the experiment service acknowledges it: a deliverer claims a due row by giving it a fresh
-- lease_token and lease_until (FOR UPDATE SKIP LOCKED), records the outcome only under that
-- token, and an expired lease makes the row due again. Acknowledged rows are kept as a record.
CREATE TABLE project_deletion_outbox (
    -- Sent with every try: the experiment service records the deletion once.
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id      uuid NOT NULL UNIQUE,
    deleted_by      uuid,
    deleted_at      timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    lease_token     uuid,
    lease_until     timestamptz,
    last_status     integer,
    last_error      text CHECK (char_length(last_error) <= 1000),
    last_attempt_at timestamptz,
    acknowledged_at timestamptz,
    CHECK ((lease_token IS NULL) = (lease_until IS NULL))
);
CREATE INDEX project_deletion_outbox_due_idx ON project_deletion_outbox (next_attempt_at)
    WHERE acknowledged_at IS NULL;
