-- The raw-value policy of a project as the service last learned it from a member's membership
-- answer (the auth service owns it). Read where no member is asking: the dispatcher announcing a
-- conversion profile that became active by time alone leaves its payload out unless the
-- project's policy is known to allow raw values.
CREATE TABLE project_raw_policies (
    project_id    uuid PRIMARY KEY,
    physical_only boolean NOT NULL,
    learned_at    timestamptz NOT NULL DEFAULT now()
);
