-- Run comparison reads a sensor's readings in a capture session off the (session, time) index
-- alone. With the sensor's condition in the same scan, the planner may AND in the (sensor, time)
-- index, which holds every reading the sensor ever sent: 100 sessions of a sensor with 100,000
-- readings took a second instead of a tenth of one. `OFFSET 0` keeps each subquery apart, so
-- the sensor and signal are checked on the session's readings as they come.

CREATE OR REPLACE FUNCTION telemetry_seam.session_stats(
    session_ids uuid[], sensor_ids uuid[], scale double precision
)
RETURNS TABLE (
    capture_session_id uuid, sensor_id uuid, signal text,
    count bigint, min double precision, max double precision,
    avg double precision, twa double precision
)
LANGUAGE sql STABLE
BEGIN ATOMIC
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
            FROM (
                SELECT one.sensor_id, one.signal, one.physical_value, one."timestamp",
                       one.batch_id, one.seq
                FROM telemetry_records one
                WHERE one.capture_session_id = s.id AND one.physical_value IS NOT NULL
                OFFSET 0
            ) r
            WHERE r.sensor_id = pair.sensor_id
            WINDOW ordered AS (PARTITION BY r.signal ORDER BY r."timestamp", r.batch_id, r.seq)
        ) timed
        GROUP BY timed.signal
    ) stats;
END;

CREATE OR REPLACE FUNCTION telemetry_seam.session_traces(
    session_ids uuid[], sensor uuid, channel text, points integer
)
RETURNS TABLE (
    capture_session_id uuid, width_us bigint, t double precision[], count bigint[],
    min double precision[], max double precision[],
    first double precision[], last double precision[]
)
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH spans AS (
        SELECT s.id, s.started_at, span.first_at, span.last_at
        FROM telemetry_seam.capture_sessions s
        CROSS JOIN LATERAL (
            SELECT min(r."timestamp") AS first_at, max(r."timestamp") AS last_at
            FROM (
                SELECT one.sensor_id, one.signal, one."timestamp"
                FROM telemetry_records one
                WHERE one.capture_session_id = s.id AND one.physical_value IS NOT NULL
                OFFSET 0
            ) r
            WHERE r.sensor_id = sensor AND r.signal = channel
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
                FROM (
                    SELECT inside.sensor_id, inside.signal, inside."timestamp", inside.batch_id,
                           inside.seq, inside.physical_value
                    FROM telemetry_records inside
                    WHERE inside.capture_session_id = spans.id
                      AND inside.physical_value IS NOT NULL
                    OFFSET 0
                ) r
                WHERE r.sensor_id = sensor AND r.signal = channel
            ) one
            GROUP BY one.bucket
        ) buckets
    ) trace;
END;
