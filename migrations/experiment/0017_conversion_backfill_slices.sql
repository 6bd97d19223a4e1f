-- Slices of a backfill (docs/telemetry.md, "Backfill"): the telemetry job cuts a backfill's
-- range by time into slices, each keyset by its own cursor, so that several lanes convert one
-- backfill at once. A chunk is still one transaction: it moves its slice's cursor and the
-- backfill's `rows_done`; the last slice to finish ends the backfill.
--
-- Expand only: the backfill's own cursor columns, `telemetry_seam.conversion_backfills` and
-- `conversion_backfill_progress` stay for the processes of the previous release (a reading
-- converted again by one of them gets the same answer); a later release drops them.
CREATE TABLE conversion_backfill_slices (
    backfill_id      uuid NOT NULL REFERENCES conversion_backfills (id) ON DELETE CASCADE,
    slice            integer NOT NULL,
    -- The backfill's sensor, copied: a lane locks a slice through the seam's view, and a view
    -- joining the backfill would lock the backfill's row as well, which every lane needs.
    sensor_id        uuid NOT NULL,
    range_from       timestamptz NOT NULL,
    -- NULL: open-ended (the last slice of an open-ended backfill).
    range_to         timestamptz,
    cursor_timestamp timestamptz,
    cursor_batch_id  bigint,
    cursor_seq       integer,
    finished         boolean NOT NULL DEFAULT false,
    PRIMARY KEY (backfill_id, slice),
    CHECK (range_to IS NULL OR range_to > range_from)
);
CREATE INDEX conversion_backfill_slices_open_idx ON conversion_backfill_slices (backfill_id, slice)
    WHERE NOT finished;

-- A backfill running when this lands goes on as one slice, from its cursor.
INSERT INTO conversion_backfill_slices
    (backfill_id, slice, sensor_id, range_from, range_to, cursor_timestamp, cursor_batch_id,
     cursor_seq)
SELECT id, 0, sensor_id, range_from, range_to, cursor_timestamp, cursor_batch_id, cursor_seq
FROM conversion_backfills WHERE status = 'running';

-- The running backfills with their estimate, for the job to cut (those without slices yet).
CREATE VIEW telemetry_seam.unsliced_conversion_backfills AS
    SELECT b.id, b.sensor_id, b.range_from, b.range_to, b.rows_total
    FROM conversion_backfills b
    WHERE b.status = 'running'
      AND NOT EXISTS (SELECT 1 FROM conversion_backfill_slices s WHERE s.backfill_id = b.id);

-- The slices left to convert; the job claims one per chunk (FOR UPDATE SKIP LOCKED).
CREATE VIEW telemetry_seam.conversion_backfill_slices AS
    SELECT backfill_id, slice, sensor_id, range_from, range_to,
           cursor_timestamp, cursor_batch_id, cursor_seq
    FROM conversion_backfill_slices WHERE NOT finished;

-- A backfill cut at `bounds` (ascending, inside its range): slice i covers [bound i-1, bound i),
-- the first from the range's start, the last to its end. A backfill cut already keeps its slices.
CREATE FUNCTION telemetry_seam.slice_conversion_backfill(backfill uuid, bounds timestamptz[])
RETURNS void LANGUAGE sql
BEGIN ATOMIC
    INSERT INTO conversion_backfill_slices (backfill_id, slice, sensor_id, range_from, range_to)
    SELECT b.id, edge.n - 1, b.sensor_id,
           coalesce(bounds[edge.n - 1], b.range_from), coalesce(bounds[edge.n], b.range_to)
    FROM conversion_backfills b,
         generate_series(1, coalesce(array_length(bounds, 1), 0) + 1) AS edge(n)
    WHERE b.id = backfill AND b.status = 'running'
      AND NOT EXISTS (SELECT 1 FROM conversion_backfill_slices s WHERE s.backfill_id = b.id);
END;

-- One chunk of a slice done: its cursor moves past the chunk's last reading and the backfill's
-- `rows_done` grows. The backfill's row lock orders concurrent chunks, so that the last slice to
-- finish sees the others finished and ends the backfill: true then, NULL otherwise.
CREATE FUNCTION telemetry_seam.conversion_backfill_slice_progress(
    backfill uuid, slice_no integer, last_timestamp timestamptz, last_batch_id bigint,
    last_seq integer, done bigint, at timestamptz, finished boolean
) RETURNS boolean LANGUAGE sql
BEGIN ATOMIC
    UPDATE conversion_backfill_slices SET
        cursor_timestamp = coalesce(last_timestamp, cursor_timestamp),
        cursor_batch_id = coalesce(last_batch_id, cursor_batch_id),
        cursor_seq = coalesce(last_seq, cursor_seq),
        finished = conversion_backfill_slices.finished OR
                   conversion_backfill_slice_progress.finished
    WHERE backfill_id = backfill AND slice = slice_no;
    UPDATE conversion_backfills SET
        rows_done = rows_done + done,
        -- Readings stored meanwhile may make the count pass the estimate made at the start.
        rows_total = greatest(rows_total, rows_done + done),
        updated_at = at
    WHERE id = backfill AND status = 'running';
    UPDATE conversion_backfills SET status = 'succeeded', finished_at = at
    WHERE id = backfill AND status = 'running'
      AND NOT EXISTS (
          SELECT 1 FROM conversion_backfill_slices s WHERE s.backfill_id = backfill AND NOT s.finished
      )
    RETURNING true;
END;
