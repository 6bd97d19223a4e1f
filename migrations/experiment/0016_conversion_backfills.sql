-- Backfills (docs/telemetry.md, "Backfill"): a conversion profile published for a past start
-- recomputes the stored readings of its validity. The experiment service records the backfill;
-- the telemetry job `telemetry.conversion_backfill` converts the readings in chunks, keyset by
-- ("timestamp", batch_id, seq), each chunk moving the cursor in its own transaction (so a
-- process killed mid-way resumes after the last chunk it committed); the experiment job
-- `conversion_backfills.announce` then writes the audit row and `capture.backfill.finished`.
CREATE TABLE conversion_backfills (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sensor_id        uuid NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    profile_id       uuid NOT NULL REFERENCES conversion_profiles (id) ON DELETE CASCADE,
    range_from       timestamptz NOT NULL,
    -- NULL: open-ended (the profile is the sensor's last).
    range_to         timestamptz,
    status           text NOT NULL DEFAULT 'running'
                     CHECK (status IN ('running', 'succeeded', 'failed')),
    rows_total       bigint NOT NULL DEFAULT 0,
    rows_done        bigint NOT NULL DEFAULT 0,
    cursor_timestamp timestamptz,
    cursor_batch_id  bigint,
    cursor_seq       integer,
    error            text,
    created_by       uuid,
    started_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    finished_at      timestamptz,
    announced_at     timestamptz,
    CHECK (range_to IS NULL OR range_to > range_from)
);
-- One backfill per profile: a second request returns it.
CREATE UNIQUE INDEX conversion_backfills_profile_idx ON conversion_backfills (profile_id);
CREATE INDEX conversion_backfills_running_idx ON conversion_backfills (started_at)
    WHERE status = 'running';
CREATE INDEX conversion_backfills_unannounced_idx ON conversion_backfills (finished_at)
    WHERE finished_at IS NOT NULL AND announced_at IS NULL;

-- What telemetry reads and writes of it (tests/telemetry_ingest/test_seam.py).
CREATE VIEW telemetry_seam.conversion_backfills AS
    SELECT id, sensor_id, range_from, range_to, cursor_timestamp, cursor_batch_id, cursor_seq
    FROM conversion_backfills WHERE status = 'running';

-- One chunk done: the cursor moves past its last reading; `finished` ends the backfill.
CREATE FUNCTION telemetry_seam.conversion_backfill_progress(
    backfill uuid, last_timestamp timestamptz, last_batch_id bigint, last_seq integer,
    done bigint, at timestamptz, finished boolean
) RETURNS void LANGUAGE sql
BEGIN ATOMIC
    UPDATE conversion_backfills SET
        cursor_timestamp = coalesce(last_timestamp, cursor_timestamp),
        cursor_batch_id = coalesce(last_batch_id, cursor_batch_id),
        cursor_seq = coalesce(last_seq, cursor_seq),
        rows_done = rows_done + done,
        -- Readings stored meanwhile may make the count pass the estimate made at the start.
        rows_total = greatest(rows_total, rows_done + done),
        updated_at = at,
        status = CASE WHEN finished THEN 'succeeded' ELSE status END,
        finished_at = CASE WHEN finished THEN at ELSE finished_at END
    WHERE id = backfill AND status = 'running';
END;

-- The experiment service counts a backfill's readings when it records it.
CREATE FUNCTION telemetry_seam.count_readings(sensor uuid, from_at timestamptz, to_at timestamptz)
RETURNS bigint LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT count(*) FROM telemetry_records
    WHERE sensor_id = sensor AND "timestamp" >= from_at AND (to_at IS NULL OR "timestamp" < to_at);
END;
