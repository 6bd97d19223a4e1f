-- The telemetry ingest service's interface to the experiment tables: what it reads of them and
-- what it writes, and nothing more. Its repositories name only these (and the telemetry tables
-- of 0004 and 0005, which it owns); tests/telemetry_ingest/test_seam.py checks that. The
-- database tracks what each view and function uses, so an experiment migration that would break
-- the seam (drop or retype a column telemetry reads) fails until the seam is changed with it.
--
-- Each view is a projection of one table, which the planner inlines: a query through the views
-- is planned as the same query over the tables (same indexes, same plan).

CREATE SCHEMA telemetry_seam;

-- Who may read a sensor's readings: the projects it belongs to.
CREATE VIEW telemetry_seam.sensors AS
    SELECT id FROM sensors;
CREATE VIEW telemetry_seam.sensor_projects AS
    SELECT sensor_id, project_id FROM sensor_projects;

-- The digests a sensor token is checked against, each with the instant it stops working.
CREATE VIEW telemetry_seam.sensor_tokens AS
    SELECT sensor_id, token_hash, expires_at FROM sensor_tokens;

-- Runs and capture sessions: their project (who may read their readings), their status and
-- times (whether and how they take readings), and the sensors bound to runs.
CREATE VIEW telemetry_seam.runs AS
    SELECT id, project_id, status FROM runs;
CREATE VIEW telemetry_seam.capture_sessions AS
    SELECT id, run_id, project_id, status, started_at, stopped_at FROM capture_sessions;
CREATE VIEW telemetry_seam.run_sensors AS
    SELECT run_id, sensor_id FROM run_sensors;

-- The conversion profiles readings are converted by, with their validity.
CREATE VIEW telemetry_seam.conversion_profiles AS
    SELECT id, sensor_id, kind, payload, valid_from, valid_to FROM conversion_profiles;

-- The two columns telemetry writes, coalesced (once a flush for all sensors, not per batch):
-- when each sensor was last heard from and each token last used. An instant only moves forward.
CREATE FUNCTION telemetry_seam.record_heartbeats(sensor_ids uuid[], heard_at timestamptz[])
RETURNS void LANGUAGE sql
BEGIN ATOMIC
    UPDATE sensors s SET last_heartbeat = v.at
    FROM unnest(sensor_ids, heard_at) AS v(id, at)
    WHERE s.id = v.id AND (s.last_heartbeat IS NULL OR s.last_heartbeat < v.at);
END;

CREATE FUNCTION telemetry_seam.record_token_use(token_hashes bytea[], used_at timestamptz[])
RETURNS void LANGUAGE sql
BEGIN ATOMIC
    UPDATE sensor_tokens t SET last_used_at = v.at
    FROM unnest(token_hashes, used_at) AS v(hash, at)
    WHERE t.token_hash = v.hash AND (t.last_used_at IS NULL OR t.last_used_at < v.at);
END;
