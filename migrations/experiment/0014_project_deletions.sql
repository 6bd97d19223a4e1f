-- Projects deleted in the auth service (docs/operations.md, "Deleting a project"). The auth
-- service announces each deletion (its outbox, delivered until acknowledged); the service
-- records it here, revokes the project's sensor tokens in the same transaction, and the job
-- `projects.delete_data` deletes the project's rows in chunks, marking it finished at the end.
CREATE TABLE project_deletions (
    project_id  uuid PRIMARY KEY,
    -- The announcement's id in the auth service's outbox: the same on every redelivery.
    event_id    uuid NOT NULL,
    deleted_at  timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    finished_at timestamptz,
    -- What the job deleted, counted over its runs.
    result      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX project_deletions_pending_idx ON project_deletions (recorded_at)
    WHERE finished_at IS NULL;

-- Sensors deleted with their project whose readings telemetry still deletes (in the
-- background, in chunks); readings_deleted_at is set once they are gone.
CREATE TABLE deleted_sensors (
    sensor_id           uuid PRIMARY KEY,
    project_id          uuid NOT NULL,
    deleted_at          timestamptz NOT NULL,
    readings_deleted_at timestamptz
);
CREATE INDEX deleted_sensors_pending_idx ON deleted_sensors (deleted_at)
    WHERE readings_deleted_at IS NULL;

-- What telemetry reads and writes of it (tests/telemetry_ingest/test_seam.py).
CREATE VIEW telemetry_seam.deleted_sensors AS
    SELECT sensor_id, deleted_at FROM deleted_sensors WHERE readings_deleted_at IS NULL;

CREATE FUNCTION telemetry_seam.sensor_readings_deleted(sensor uuid, at timestamptz)
RETURNS void LANGUAGE sql
BEGIN ATOMIC
    UPDATE deleted_sensors SET readings_deleted_at = at
    WHERE sensor_id = sensor AND readings_deleted_at IS NULL;
END;

-- The job finds a project's sensors and webhook events by project.
CREATE INDEX sensors_project_idx ON sensors (project_id);
CREATE INDEX webhook_events_project_idx ON webhook_events (project_id);
