-- Telemetry (owned by telemetry ingest): batches, readings, the ingest error journal.
--
-- `telemetry_records` is a TimescaleDB hypertable with compression where the extension is
-- installed and preloaded; otherwise a table partitioned by month on the reading's timestamp,
-- with BRIN and (sensor_id, timestamp) indexes. `telemetry_storage()` says which.

-- One row per stored batch: its id orders batches (live stream event ids) and the client's
-- batch id makes a resend idempotent.
CREATE TABLE telemetry_batches (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sensor_id          uuid NOT NULL,
    client_batch_id    text CHECK (char_length(client_batch_id) BETWEEN 1 AND 200),
    -- Set by the service for each acknowledged batch: a store retried after an unclear failure,
    -- or replayed from the spool, finds it taken and is not stored twice.
    ingest_key         uuid NOT NULL UNIQUE,
    run_id             uuid,
    capture_session_id uuid,
    readings           integer NOT NULL CHECK (readings > 0),
    first_timestamp    timestamptz NOT NULL,
    last_timestamp     timestamptz NOT NULL,
    received_at        timestamptz NOT NULL,
    stored_at          timestamptz NOT NULL DEFAULT now(),
    -- Acknowledged from the on-disk spool while PostgreSQL was away, stored on replay.
    spooled            boolean NOT NULL DEFAULT false,
    UNIQUE (sensor_id, client_batch_id)
);
CREATE INDEX telemetry_batches_sensor_idx ON telemetry_batches (sensor_id, id);
CREATE INDEX telemetry_batches_session_idx ON telemetry_batches (capture_session_id, id)
    WHERE capture_session_id IS NOT NULL;

CREATE FUNCTION telemetry_storage() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
                THEN 'timescaledb' ELSE 'partitioned' END
$$;

-- Monthly partitions from the month of `first` on, `months` of them; existing ones are kept.
-- Readings before the earliest partition land in the default partition, which later calls never
-- overlap (they start at the current month).
CREATE FUNCTION telemetry_ensure_partitions(first timestamptz, months integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    start timestamptz;
BEGIN
    IF telemetry_storage() <> 'partitioned' THEN
        RETURN;
    END IF;
    -- Worker processes start together: one creates, the others then find the tables there.
    PERFORM pg_advisory_xact_lock(hashtext('telemetry_ensure_partitions'));
    FOR i IN 0 .. months - 1 LOOP
        start := date_trunc('month', first AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                 + make_interval(months => i);
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I PARTITION OF telemetry_records '
            'FOR VALUES FROM (%L) TO (%L)',
            'telemetry_records_' || to_char(start AT TIME ZONE 'UTC', 'YYYY_MM'),
            start, start + interval '1 month');
    END LOOP;
END;
$$;

-- Readings older than `keep` go (NULL keeps everything): on TimescaleDB as a retention policy
-- that drops whole chunks; on plain PostgreSQL by dropping whole monthly partitions that ended
-- before then, and deleting such rows from the default partition.
CREATE FUNCTION telemetry_apply_retention(keep interval) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    partition record;
BEGIN
    IF telemetry_storage() = 'timescaledb' THEN
        PERFORM remove_retention_policy('telemetry_records', if_exists => true);
        IF keep IS NOT NULL THEN
            PERFORM add_retention_policy('telemetry_records', keep);
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
        EXECUTE format('DROP TABLE %I', partition.relname);
    END LOOP;
    DELETE FROM telemetry_records_default WHERE "timestamp" < now() - keep;
END;
$$;

DO $$
DECLARE
    columns constant text := $columns$
        batch_id           bigint NOT NULL,
        seq                integer NOT NULL,
        sensor_id          uuid NOT NULL,
        run_id             uuid,
        capture_session_id uuid,
        "timestamp"        timestamptz NOT NULL,
        received_at        timestamptz NOT NULL,
        raw_value          double precision NOT NULL,
        physical_value     double precision,
        conversion_status  text NOT NULL CHECK (conversion_status IN ('ok', 'no_profile', 'error')),
        profile_id         uuid,
        late               boolean NOT NULL DEFAULT false,
        meta               jsonb,
        signal             text GENERATED ALWAYS AS (coalesce(meta ->> 'signal', 'value')) STORED
    $columns$;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
       AND current_setting('shared_preload_libraries') LIKE '%timescaledb%' THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        EXECUTE 'CREATE TABLE telemetry_records (' || columns || ')';
        PERFORM create_hypertable('telemetry_records', 'timestamp',
                                  chunk_time_interval => interval '1 day');
        ALTER TABLE telemetry_records SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'sensor_id',
            timescaledb.compress_orderby = '"timestamp", batch_id, seq'
        );
        PERFORM add_compression_policy('telemetry_records', interval '7 days');
    ELSE
        EXECUTE 'CREATE TABLE telemetry_records (' || columns || ') PARTITION BY RANGE ("timestamp")';
        CREATE TABLE telemetry_records_default PARTITION OF telemetry_records DEFAULT;
        PERFORM telemetry_ensure_partitions(now() - interval '1 month', 4);
        CREATE INDEX telemetry_records_time_brin_idx ON telemetry_records
            USING brin ("timestamp") WITH (pages_per_range = 32);
    END IF;
END;
$$;
CREATE INDEX telemetry_records_sensor_time_idx ON telemetry_records (sensor_id, "timestamp");
CREATE INDEX telemetry_records_session_time_idx ON telemetry_records
    (capture_session_id, "timestamp") WHERE capture_session_id IS NOT NULL;
CREATE INDEX telemetry_records_batch_idx ON telemetry_records (batch_id);

-- Rejected batches, per sensor (the newest few hundred are kept; see telemetry ingest).
CREATE TABLE ingest_errors (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sensor_id   uuid NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    status      smallint NOT NULL,
    code        text NOT NULL,
    detail      text NOT NULL,
    batch_id    text,
    readings    integer NOT NULL,
    rejected    integer NOT NULL,
    errors      jsonb NOT NULL DEFAULT '[]',
    request_id  text
);
CREATE INDEX ingest_errors_sensor_idx ON ingest_errors (sensor_id, id);

-- Telemetry ingest caches token digests; a token that ends or changes its end tells it to forget.
CREATE FUNCTION sensor_tokens_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sensor_tokens', OLD.sensor_id::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER sensor_tokens_notify AFTER UPDATE OF expires_at OR DELETE ON sensor_tokens
    FOR EACH ROW EXECUTE FUNCTION sensor_tokens_changed();

