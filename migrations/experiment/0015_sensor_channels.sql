-- Multi-channel sensors: a reading's channel (`signal`, from its meta.signal, default 'value')
-- is a dimension of the readings, the rollup and every read; a sensor may declare its channels,
-- and ingest then refuses readings on any other channel.

-- The channels a sensor declares: [{"name": …, "unit": …}] (the service checks names, units and
-- count); empty: none declared, any channel is taken.
ALTER TABLE sensors ADD COLUMN channels jsonb NOT NULL DEFAULT '[]'
    CHECK (jsonb_typeof(channels) = 'array' AND jsonb_array_length(channels) <= 32);
DROP TRIGGER sensors_updated_at ON sensors;
CREATE TRIGGER sensors_updated_at
    BEFORE UPDATE OF name, type, input_unit, display_unit, description, channels ON sensors
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- What ingest checks readings against: the declared channel names (NULL: none declared). Ingest
-- keeps them with the sensor's token digests, so a change of them tells it to forget the sensor
-- (the channel its token cache listens on).
CREATE VIEW telemetry_seam.sensor_channels AS
    SELECT id AS sensor_id,
           (SELECT array_agg(c.value ->> 'name' ORDER BY c.ordinality)
            FROM jsonb_array_elements(channels) WITH ORDINALITY AS c) AS channels
    FROM sensors;

CREATE FUNCTION sensor_channels_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sensor_tokens', NEW.id::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER sensors_channels_notify AFTER UPDATE OF channels ON sensors
    FOR EACH ROW WHEN (OLD.channels IS DISTINCT FROM NEW.channels)
    EXECUTE FUNCTION sensor_channels_changed();

-- Reads of some channels of a sensor (history, aggregates, the aligned view, exports) scan
-- their readings alone. Plain PostgreSQL and TimescaleDB alike: the index goes on every
-- partition or chunk.
CREATE INDEX telemetry_records_sensor_signal_time_idx ON telemetry_records
    (sensor_id, signal, "timestamp");

-- The rollup per sensor, layer, minute and channel. Rows stored so far mixed a sensor's
-- channels: they are labelled with the default channel, and every day of them whose readings
-- are still kept is queued (from its first to its last stored minute) for the refresher to
-- recompute per channel; until then readers compute those minutes from the readings, so
-- answers are exact at once. Days whose readings are gone (raw retention) keep their mixed
-- rows under 'value'.
ALTER TABLE telemetry_rollup ADD COLUMN signal text NOT NULL DEFAULT 'value';
ALTER TABLE telemetry_rollup ALTER COLUMN signal DROP DEFAULT;
ALTER TABLE telemetry_rollup DROP CONSTRAINT telemetry_rollup_pkey;
ALTER TABLE telemetry_rollup ADD PRIMARY KEY (sensor_id, layer, minute, signal);

INSERT INTO telemetry_rollup_pending (sensor_id, first_minute, last_minute)
SELECT d.sensor_id, d.first_minute, d.last_minute
FROM (
    SELECT sensor_id, date_bin('1 day', minute, '2000-01-01T00:00:00Z') AS day,
           min(minute) AS first_minute, max(minute) AS last_minute
    FROM telemetry_rollup
    GROUP BY 1, 2
) d
WHERE EXISTS (
    SELECT 1 FROM telemetry_records r
    WHERE r.sensor_id = d.sensor_id AND r."timestamp" >= d.day
      AND r."timestamp" < d.day + interval '1 day'
)
ORDER BY d.day, d.sensor_id;
