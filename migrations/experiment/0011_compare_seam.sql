-- The seam in the other direction: what the experiment service reads of the telemetry tables to
-- compare runs (GET /api/v1/runs:compare and …/overlay). Its repositories call these functions
-- and name no telemetry table (tests/telemetry_ingest/test_seam.py checks that, and that the
-- telemetry repositories still name no experiment table). The bodies are SQL-standard, so the
-- database tracks the columns they use: a telemetry migration that drops or retypes one fails
-- until the seam changes with it.
--
-- Both read the physical values of the readings attached to capture sessions (a reading without
-- one, no profile or a conversion error, does not count), in the history's order: timestamp,
-- then batch, then position in the batch.

-- Per capture session, sensor and signal (the channel of a multi-channel sensor), for the
-- (session, sensor) pairs given as two arrays of one length: count, min, max, mean and the
-- time-weighted mean. Each reading weighs the time until the next one; the last one until the
-- session stopped (nothing while it runs, or when it stopped before that reading); without any
-- weight the time-weighted mean is the mean. Sums are taken of the values times `scale`: 1, or,
-- for values so large that their sums overflow (an error the caller catches), a power of two
-- that brings them down without rounding them (as telemetry's own aggregates do).
CREATE FUNCTION telemetry_seam.session_stats(
    session_ids uuid[], sensor_ids uuid[], scale double precision
)
RETURNS TABLE (
    capture_session_id uuid, sensor_id uuid, signal text,
    count bigint, min double precision, max double precision,
    avg double precision, twa double precision
)
LANGUAGE sql STABLE
BEGIN ATOMIC
    -- Pair by pair: each pair's readings come off the (session, time) index and are ordered
    -- apart, a small sort each rather than one large one.
    SELECT s.id, pair.sensor_id, stats.signal, stats.count, stats.min, stats.max, stats.avg,
           stats.twa
    FROM unnest(session_ids, sensor_ids) AS pair(session_id, sensor_id)
    JOIN telemetry_seam.capture_sessions s ON s.id = pair.session_id
    CROSS JOIN LATERAL (
        SELECT timed.signal, count(*) AS count, min(timed.v) AS min, max(timed.v) AS max,
               sum(timed.v * scale) / count(*) / scale AS avg,
               coalesce(sum(timed.v * scale * timed.w) / nullif(sum(timed.w), 0),
                        sum(timed.v * scale) / count(*)) / scale AS twa
        FROM (
            SELECT r.signal, r.physical_value AS v,
                   date_part('epoch', greatest(
                       coalesce(lead(r."timestamp") OVER ordered, s.stopped_at, r."timestamp")
                           - r."timestamp",
                       interval '0')) AS w
            FROM telemetry_records r
            WHERE r.capture_session_id = s.id AND r.sensor_id = pair.sensor_id
              AND r.physical_value IS NOT NULL
            WINDOW ordered AS (PARTITION BY r.signal ORDER BY r."timestamp", r.batch_id, r.seq)
        ) timed
        GROUP BY timed.signal
    ) stats;
END;

-- One sensor's trace (one signal) in each of the capture sessions, downsampled for a chart with
-- its extremes kept: time is the offset from the session's start (t = 0), cut into buckets of one
-- width for all the sessions, k·width ≤ offset < (k + 1)·width, and each bucket that holds
-- readings gives its start t (k·width, in seconds), count, min, max, first and last value. The
-- width (whole microseconds) is the narrowest that gives at most `points` buckets (points ≥ 2)
-- to the session whose readings span the longest. One row per session with readings, its
-- buckets in time order as arrays (index i of each is bucket i): a chart's series as they are.
CREATE FUNCTION telemetry_seam.session_traces(
    session_ids uuid[], sensor uuid, channel text, points integer
)
RETURNS TABLE (
    capture_session_id uuid, width_us bigint, t double precision[], count bigint[],
    min double precision[], max double precision[],
    first double precision[], last double precision[]
)
LANGUAGE sql STABLE
BEGIN ATOMIC
    -- Session by session, off the (session, time) index: first each one's span, then, with the
    -- width they give, its buckets, each with its values in time order for the first and last.
    WITH spans AS (
        SELECT s.id, s.started_at, span.first_at, span.last_at
        FROM telemetry_seam.capture_sessions s
        CROSS JOIN LATERAL (
            SELECT min(r."timestamp") AS first_at, max(r."timestamp") AS last_at
            FROM telemetry_records r
            WHERE r.capture_session_id = s.id AND r.sensor_id = sensor AND r.signal = channel
              AND r.physical_value IS NOT NULL
        ) span
        WHERE s.id = ANY(session_ids) AND s.started_at IS NOT NULL AND span.first_at IS NOT NULL
    ), grid AS (
        SELECT (floor(max(extract(epoch FROM spans.last_at - spans.first_at) * 1000000)
                      / greatest(points - 1, 1)) + 1)::bigint AS width_us
        FROM spans
    )
    SELECT spans.id, grid.width_us, trace.t, trace.count, trace.min, trace.max, trace.first,
           trace.last
    FROM spans CROSS JOIN grid
    CROSS JOIN LATERAL (
        SELECT array_agg((buckets.bucket * grid.width_us)::double precision / 1000000
                         ORDER BY buckets.bucket) AS t,
               array_agg(buckets.count ORDER BY buckets.bucket) AS count,
               array_agg(buckets.min ORDER BY buckets.bucket) AS min,
               array_agg(buckets.max ORDER BY buckets.bucket) AS max,
               array_agg(buckets.ordered[1] ORDER BY buckets.bucket) AS first,
               array_agg(buckets.ordered[cardinality(buckets.ordered)] ORDER BY buckets.bucket)
                   AS last
        FROM (
            SELECT one.bucket, count(*) AS count, min(one.v) AS min, max(one.v) AS max,
                   array_agg(one.v ORDER BY one."timestamp", one.batch_id, one.seq) AS ordered
            FROM (
                -- extract (exact numeric), not date_part (float): a reading on a bucket's
                -- edge lands in the bucket that starts there.
                SELECT r."timestamp", r.batch_id, r.seq, r.physical_value AS v,
                       floor(extract(epoch FROM r."timestamp" - spans.started_at) * 1000000
                             / grid.width_us)::bigint AS bucket
                FROM telemetry_records r
                WHERE r.capture_session_id = spans.id AND r.sensor_id = sensor
                  AND r.signal = channel AND r.physical_value IS NOT NULL
            ) one
            GROUP BY one.bucket
        ) buckets
    ) trace;
END;
