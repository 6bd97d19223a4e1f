-- Background jobs (docs/jobs.md) and what they keep: the job table every runner claims from,
-- the history of runs, per-project settings of the jobs, the end a capture session was started
-- with, a failed run's reason, sensor status transitions and the data gaps of capture sessions.

-- One row per job (experiment and telemetry jobs alike). A runner claims a due row by giving it
-- a fresh lease_token and lease_until (FOR UPDATE SKIP LOCKED); only the holder of the current
-- token records the outcome, and an expired lease makes the row claimable again. Instants come
-- from the runners' clock, not from the database's.
CREATE TABLE jobs (
    name             text PRIMARY KEY CHECK (char_length(name) BETWEEN 1 AND 100),
    service          text NOT NULL,
    description      text NOT NULL DEFAULT '',
    interval_seconds double precision NOT NULL CHECK (interval_seconds > 0),
    next_run_at      timestamptz NOT NULL,
    -- Failed runs in a row: the next try waits longer with each (up to the interval).
    failures         integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    lease_token      uuid,
    lease_until      timestamptz,
    leased_by        text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((lease_token IS NULL) = (lease_until IS NULL))
);
CREATE INDEX jobs_due_idx ON jobs (next_run_at);

-- Every run of a job: who ran it, when, for how long, how it ended and what it did.
CREATE TABLE job_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job         text NOT NULL REFERENCES jobs (name) ON DELETE CASCADE,
    worker      text NOT NULL,
    attempt     integer NOT NULL CHECK (attempt > 0),
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    duration_ms integer NOT NULL CHECK (duration_ms >= 0),
    -- superseded: the runner's lease had passed to another before it could record the outcome.
    status      text NOT NULL CHECK (status IN ('succeeded', 'failed', 'superseded')),
    error       text CHECK (char_length(error) <= 2000),
    result      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX job_runs_job_idx ON job_runs (job, id);
CREATE INDEX job_runs_finished_idx ON job_runs (finished_at);

-- Settings of a project that jobs read (NULL: the service's default).
CREATE TABLE project_settings (
    project_id                      uuid PRIMARY KEY,
    stale_run_after_seconds         integer
        CHECK (stale_run_after_seconds BETWEEN 60 AND 366 * 86400),
    telemetry_raw_retention_days    integer CHECK (telemetry_raw_retention_days BETWEEN 1 AND 36600),
    telemetry_rollup_retention_days integer
        CHECK (telemetry_rollup_retention_days BETWEEN 1 AND 36600),
    updated_by                      uuid,
    updated_at                      timestamptz NOT NULL DEFAULT now(),
    CHECK (telemetry_raw_retention_days <= telemetry_rollup_retention_days)
);

-- Why the service failed a run by itself (e.g. 'stale'); NULL for a run failed by a person.
ALTER TABLE runs ADD COLUMN failure_reason text CHECK (char_length(failure_reason) <= 2000);

-- A capture started with a duration stops itself at planned_stop_at.
ALTER TABLE capture_sessions ADD COLUMN planned_stop_at timestamptz;
CREATE INDEX capture_sessions_planned_stop_idx ON capture_sessions (planned_stop_at)
    WHERE status = 'running' AND planned_stop_at IS NOT NULL;
CREATE INDEX capture_sessions_running_idx ON capture_sessions (run_id) WHERE status = 'running';

-- The reachability last announced for a sensor (sensor.online / sensor.offline are sent once per
-- change of it): 'online' covers online and delayed; NULL until first heard.
ALTER TABLE sensors ADD COLUMN reachability text CHECK (reachability IN ('online', 'offline'));
ALTER TABLE sensors ADD COLUMN reachability_changed_at timestamptz;

-- Stretches of a capture session in which a sensor bound to its run was offline; to_at is NULL
-- while the sensor still is.
CREATE TABLE capture_session_gaps (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    capture_session_id uuid NOT NULL REFERENCES capture_sessions (id) ON DELETE CASCADE,
    sensor_id          uuid NOT NULL,
    from_at            timestamptz NOT NULL,
    to_at              timestamptz CHECK (to_at >= from_at)
);
CREATE INDEX capture_session_gaps_session_idx ON capture_session_gaps (capture_session_id, id);
CREATE UNIQUE INDEX capture_session_gaps_open_idx ON capture_session_gaps
    (capture_session_id, sensor_id) WHERE to_at IS NULL;
CREATE INDEX capture_session_gaps_sensor_open_idx ON capture_session_gaps (sensor_id)
    WHERE to_at IS NULL;

-- Stale runs: when a run last had telemetry (a run's batches by arrival).
CREATE INDEX telemetry_batches_run_idx ON telemetry_batches (run_id, received_at)
    WHERE run_id IS NOT NULL;

-- The last telemetry batch each run received, for the runs given (the experiment service names
-- no telemetry table: tests/telemetry_ingest/test_seam.py).
CREATE FUNCTION telemetry_seam.last_telemetry(run_ids uuid[])
RETURNS TABLE (run_id uuid, received_at timestamptz)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT r.id, (SELECT max(b.received_at) FROM telemetry_batches b WHERE b.run_id = r.id)
    FROM unnest(run_ids) AS r(id);
END;

-- Retention of readings per project (the sensor's home project decides).
CREATE OR REPLACE VIEW telemetry_seam.sensors AS
    SELECT id, project_id FROM sensors;
CREATE VIEW telemetry_seam.project_retention AS
    SELECT project_id, telemetry_raw_retention_days, telemetry_rollup_retention_days
    FROM project_settings
    WHERE telemetry_raw_retention_days IS NOT NULL OR telemetry_rollup_retention_days IS NOT NULL;

-- Retention of the audit log: the purge job may delete rows older than the retention, and only
-- inside a transaction that says so (SET LOCAL etp.audit_purge = 'on'); every other UPDATE or
-- DELETE is still refused.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('etp.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX webhook_events_created_idx ON webhook_events (created_at);
