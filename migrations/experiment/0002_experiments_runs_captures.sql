-- Experiments, runs, capture sessions, the audit log and stored Idempotency-Key answers.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE experiments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id      uuid NOT NULL,
    name            text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description     text NOT NULL DEFAULT '' CHECK (char_length(description) <= 10000),
    tags            text[] NOT NULL DEFAULT '{}',
    owner_id        uuid NOT NULL,
    status          text NOT NULL DEFAULT 'draft'
                    CHECK (status IN ('draft', 'running', 'finished', 'failed', 'archived')),
    experiment_type text CHECK (char_length(experiment_type) <= 100),
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX experiments_project_created_idx ON experiments (project_id, created_at, id);
CREATE INDEX experiments_project_name_idx ON experiments (project_id, name, id);
CREATE INDEX experiments_tags_idx ON experiments USING gin (tags);
CREATE INDEX experiments_text_idx ON experiments
    USING gin ((name || ' ' || description) gin_trgm_ops);
CREATE TRIGGER experiments_updated_at BEFORE UPDATE ON experiments
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE runs (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    experiment_id    uuid NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    project_id       uuid NOT NULL,
    name             text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    params           jsonb NOT NULL DEFAULT '{}',
    git_sha          text CHECK (git_sha ~ '^[0-9a-f]{7,40}$'),
    env              jsonb NOT NULL DEFAULT '{}',
    tags             text[] NOT NULL DEFAULT '{}',
    notes            text NOT NULL DEFAULT '' CHECK (char_length(notes) <= 10000),
    metadata         jsonb NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'draft'
                     CHECK (status IN ('draft', 'running', 'succeeded', 'failed', 'archived')),
    started_at       timestamptz,
    finished_at      timestamptz,
    duration_seconds double precision,
    -- The last capture-session ordinal handed out: numbers are never reused, even after a delete.
    last_capture_ordinal integer NOT NULL DEFAULT 0,
    created_by       uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_project_created_idx ON runs (project_id, created_at, id);
CREATE INDEX runs_project_name_idx ON runs (project_id, name, id);
CREATE INDEX runs_experiment_created_idx ON runs (experiment_id, created_at, id);
CREATE INDEX runs_experiment_name_idx ON runs (experiment_id, name, id);
CREATE INDEX runs_project_git_sha_idx ON runs (project_id, git_sha text_pattern_ops);
CREATE INDEX runs_running_idx ON runs (experiment_id) WHERE status = 'running';
CREATE INDEX runs_tags_idx ON runs USING gin (tags);
CREATE INDEX runs_text_idx ON runs USING gin ((name || ' ' || notes) gin_trgm_ops);
CREATE TRIGGER runs_updated_at BEFORE UPDATE ON runs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE capture_sessions (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id         uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    project_id     uuid NOT NULL,
    ordinal_number integer NOT NULL CHECK (ordinal_number > 0),
    status         text NOT NULL DEFAULT 'running'
                   CHECK (status IN ('draft', 'running', 'failed', 'succeeded', 'archived',
                                     'backfilling')),
    started_at     timestamptz,
    stopped_at     timestamptz,
    initiated_by   uuid,
    notes          text NOT NULL DEFAULT '' CHECK (char_length(notes) <= 10000),
    failure_reason text CHECK (char_length(failure_reason) <= 2000),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, ordinal_number)
);
-- At most one running capture session per run.
CREATE UNIQUE INDEX capture_sessions_one_running_idx ON capture_sessions (run_id)
    WHERE status = 'running';
CREATE TRIGGER capture_sessions_updated_at BEFORE UPDATE ON capture_sessions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  uuid NOT NULL,
    actor_id    uuid,
    actor_role  text,
    action      text NOT NULL,
    entity_type text NOT NULL,
    entity_id   uuid NOT NULL,
    parent_id   uuid,
    before      jsonb,
    after       jsonb,
    request_id  text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_project_idx ON audit_log (project_id, id);
CREATE INDEX audit_log_entity_idx ON audit_log (entity_id, id);
CREATE INDEX audit_log_parent_idx ON audit_log (parent_id, id) WHERE parent_id IS NOT NULL;

-- Append-only: rows are never changed or deleted by the application.
CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE request_idempotency (
    user_id      uuid NOT NULL,
    key          text NOT NULL,
    fingerprint  bytea NOT NULL,
    status       smallint,
    body         bytea,
    content_type text,
    location     text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX request_idempotency_expires_idx ON request_idempotency (expires_at);
