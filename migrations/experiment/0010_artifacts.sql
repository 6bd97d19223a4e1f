-- Artifacts: files per run. The bytes live in an object store (docs/artifacts.md) under the
-- artifact's id, which the server chooses; the client's name is a label only.
--
-- `artifact_usage` keeps each project's stored bytes for its quota: an upload adds its size under
-- the row's lock when it commits (refused past the quota), and every deletion takes it off again
-- through the trigger below, cascades from a deleted run or experiment included. The trigger also
-- queues the id in `artifact_trash`, from which the service removes the object once the deletion
-- has committed.

CREATE TABLE artifacts (
    id           uuid PRIMARY KEY,
    run_id       uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    project_id   uuid NOT NULL,
    name         text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 1024),
    type         text NOT NULL CHECK (char_length(type) BETWEEN 1 AND 64),
    size         bigint NOT NULL CHECK (size >= 0),
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content_type text NOT NULL CHECK (char_length(content_type) BETWEEN 1 AND 255),
    metadata     jsonb NOT NULL DEFAULT '{}',
    created_by   uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    approved_by  uuid,
    approved_at  timestamptz,
    CHECK ((approved_by IS NULL) = (approved_at IS NULL))
);
CREATE INDEX artifacts_run_created_idx ON artifacts (run_id, created_at, id);

CREATE TABLE artifact_usage (
    project_id uuid PRIMARY KEY,
    bytes      bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    artifacts  bigint NOT NULL DEFAULT 0 CHECK (artifacts >= 0)
);

CREATE TABLE artifact_trash (
    artifact_id uuid PRIMARY KEY,
    deleted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX artifact_trash_deleted_idx ON artifact_trash (deleted_at);

CREATE FUNCTION artifacts_forget() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE artifact_usage AS usage
    SET bytes = usage.bytes - gone_by_project.bytes,
        artifacts = usage.artifacts - gone_by_project.artifacts
    FROM (
        SELECT project_id, sum(size) AS bytes, count(*) AS artifacts FROM gone GROUP BY project_id
    ) AS gone_by_project
    WHERE usage.project_id = gone_by_project.project_id;
    INSERT INTO artifact_trash (artifact_id) SELECT id FROM gone ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;
CREATE TRIGGER artifacts_forget AFTER DELETE ON artifacts
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION artifacts_forget();
