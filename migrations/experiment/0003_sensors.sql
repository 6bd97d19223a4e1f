-- Sensors, their tokens and projects, conversion profiles, and the sensors bound to runs.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE sensors (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The home project: it manages the sensor and can never be unlinked from it.
    project_id     uuid NOT NULL,
    name           text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    type           text NOT NULL CHECK (char_length(type) BETWEEN 1 AND 100),
    input_unit     text NOT NULL CHECK (char_length(input_unit) BETWEEN 1 AND 50),
    display_unit   text NOT NULL CHECK (char_length(display_unit) BETWEEN 1 AND 50),
    description    text NOT NULL DEFAULT '' CHECK (char_length(description) <= 10000),
    -- Written by telemetry ingest, at most about once a second per sensor.
    last_heartbeat timestamptz,
    created_by     uuid NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sensors_text_idx ON sensors USING gin ((name || ' ' || description) gin_trgm_ops);
-- Heartbeats are not edits: updated_at follows the fields people change.
CREATE TRIGGER sensors_updated_at
    BEFORE UPDATE OF name, type, input_unit, display_unit, description ON sensors
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Every project a sensor belongs to, its home project included.
CREATE TABLE sensor_projects (
    sensor_id  uuid NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    project_id uuid NOT NULL,
    added_by   uuid NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sensor_id, project_id)
);
CREATE INDEX sensor_projects_project_idx ON sensor_projects (project_id, sensor_id);

-- Only SHA-256 digests of tokens are kept. The current token has no expiry; a rotation with a
-- grace period leaves the previous one here until `expires_at`.
CREATE TABLE sensor_tokens (
    token_hash   bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    sensor_id    uuid NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    preview      text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    -- Written by telemetry ingest, coalesced (not once per batch).
    last_used_at timestamptz
);
CREATE INDEX sensor_tokens_sensor_idx ON sensor_tokens (sensor_id);
CREATE UNIQUE INDEX sensor_tokens_one_current_idx ON sensor_tokens (sensor_id)
    WHERE expires_at IS NULL;

-- A profile's validity [valid_from, valid_to) is set when it is scheduled or published; valid_to
-- is where the next profile's validity starts, or where the profile was deprecated. Intervals of
-- one sensor never overlap, so every reading time has at most one profile.
CREATE TABLE conversion_profiles (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sensor_id     uuid NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    version       text NOT NULL CHECK (char_length(version) BETWEEN 1 AND 64),
    kind          text NOT NULL CHECK (kind IN ('linear', 'polynomial', 'table')),
    payload       jsonb NOT NULL,
    description   text NOT NULL DEFAULT '' CHECK (char_length(description) <= 10000),
    valid_from    timestamptz,
    valid_to      timestamptz CHECK (valid_to > valid_from),
    deprecated_at timestamptz,
    created_by    uuid NOT NULL,
    published_by  uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (sensor_id, version),
    CONSTRAINT conversion_profiles_no_overlap EXCLUDE USING gist
        (sensor_id WITH =, tstzrange(valid_from, valid_to) WITH &&)
        WHERE (valid_from IS NOT NULL) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX conversion_profiles_sensor_idx ON conversion_profiles (sensor_id, valid_from);
CREATE TRIGGER conversion_profiles_updated_at BEFORE UPDATE ON conversion_profiles
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE run_sensors (
    run_id     uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    sensor_id  uuid NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    project_id uuid NOT NULL,
    bound_by   uuid NOT NULL,
    bound_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, sensor_id),
    -- A sensor is bound only to runs of its projects, and stays in a project while bound there.
    FOREIGN KEY (sensor_id, project_id) REFERENCES sensor_projects (sensor_id, project_id)
);
CREATE INDEX run_sensors_sensor_idx ON run_sensors (sensor_id, run_id);
