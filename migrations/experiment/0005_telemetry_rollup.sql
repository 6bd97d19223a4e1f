-- A per-minute rollup of telemetry, from which 1-minute and coarser aggregates are read.
--
-- `telemetry_rollup` holds, per sensor, layer and minute (minutes on the 2000-01-01Z grid), the
-- partials that combine exactly into wider buckets: count, min, max, the mean, the
-- time-weighted mean (its weight is the time from first_at to the minute's end), and
-- the first and last value. Every stored batch queues its minutes in `telemetry_rollup_pending`
-- in its own transaction (a trigger), so a reader sees either a queued minute or its refreshed
-- rollup row, never neither: queued minutes are computed from the readings at read time until
-- the ingest service's refresher recomputes them.

CREATE TABLE telemetry_rollup (
    sensor_id uuid NOT NULL,
    layer     text NOT NULL CHECK (layer IN ('raw', 'physical')),
    minute    timestamptz NOT NULL,
    count     integer NOT NULL CHECK (count > 0),
    min       double precision NOT NULL,
    max       double precision NOT NULL,
    avg       double precision NOT NULL,
    twa       double precision NOT NULL,
    first     double precision NOT NULL,
    last      double precision NOT NULL,
    first_at  timestamptz NOT NULL,
    PRIMARY KEY (sensor_id, layer, minute),
    CHECK (first_at >= minute AND first_at < minute + interval '1 minute')
);

-- Minutes whose rollup is out of date: [first_minute, last_minute] of one sensor, or of every
-- sensor when sensor_id is NULL (readings removed by retention).
CREATE TABLE telemetry_rollup_pending (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sensor_id    uuid,
    first_minute timestamptz NOT NULL,
    last_minute  timestamptz NOT NULL CHECK (last_minute >= first_minute)
);
CREATE INDEX telemetry_rollup_pending_sensor_idx ON telemetry_rollup_pending (sensor_id);
CREATE INDEX telemetry_rollup_pending_due_idx ON telemetry_rollup_pending (last_minute);

CREATE FUNCTION telemetry_minute(at timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT date_bin('1 minute', at, '2000-01-01T00:00:00Z')
$$;

CREATE FUNCTION telemetry_batch_stored() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO telemetry_rollup_pending (sensor_id, first_minute, last_minute)
    VALUES (NEW.sensor_id, telemetry_minute(NEW.first_timestamp),
            telemetry_minute(NEW.last_timestamp));
    RETURN NULL;
END;
$$;
CREATE TRIGGER telemetry_batches_rollup AFTER INSERT ON telemetry_batches
    FOR EACH ROW EXECUTE FUNCTION telemetry_batch_stored();

-- As in 0004, and the minutes whose readings went are queued for every sensor (on TimescaleDB,
-- whose policy drops chunks in the background, the rollup keeps the same retention).
CREATE OR REPLACE FUNCTION telemetry_apply_retention(keep interval) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    partition record;
    month_start timestamptz;
BEGIN
    IF telemetry_storage() = 'timescaledb' THEN
        PERFORM remove_retention_policy('telemetry_records', if_exists => true);
        IF keep IS NOT NULL THEN
            PERFORM add_retention_policy('telemetry_records', keep);
            DELETE FROM telemetry_rollup WHERE minute < now() - keep;
        END IF;
        RETURN;
    END IF;
    IF keep IS NULL THEN
        RETURN;
    END IF;
    FOR partition IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'telemetry_records'::regclass
          AND c.relname ~ '^telemetry_records_[0-9]{4}_[0-9]{2}$'
          AND to_date(substr(c.relname, 19), 'YYYY_MM')::timestamp AT TIME ZONE 'UTC'
              + interval '1 month' <= now() - keep
    LOOP
        month_start := to_date(substr(partition.relname, 19), 'YYYY_MM')::timestamp
                       AT TIME ZONE 'UTC';
        EXECUTE format('DROP TABLE %I', partition.relname);
        INSERT INTO telemetry_rollup_pending (sensor_id, first_minute, last_minute)
        VALUES (NULL, month_start, month_start + interval '1 month' - interval '1 minute');
    END LOOP;
    WITH gone AS (
        DELETE FROM telemetry_records_default WHERE "timestamp" < now() - keep
        RETURNING "timestamp"
    )
    INSERT INTO telemetry_rollup_pending (sensor_id, first_minute, last_minute)
    SELECT NULL, telemetry_minute(min("timestamp")), telemetry_minute(max("timestamp"))
    FROM gone HAVING count(*) > 0;
END;
$$;
