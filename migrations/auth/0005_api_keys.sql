-- API keys: long-lived bearer tokens `etpk_<id>_<secret>`, stored as SHA-256 digests only.
-- A key bound to a project goes with the project (never left unbound: that would widen it);
-- a key goes with its user.

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    key_hash     bytea NOT NULL CHECK (octet_length(key_hash) = 32),
    preview      text NOT NULL,
    project_id   uuid REFERENCES projects (id) ON DELETE CASCADE,
    role         text CHECK (role IN ('editor', 'viewer')),
    expires_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
-- The owner's list (keyset over created_at, id) and the per-user count of live keys.
CREATE INDEX api_keys_user_idx ON api_keys (user_id, created_at, id) WHERE revoked_at IS NULL;
CREATE INDEX api_keys_project_idx ON api_keys (project_id) WHERE project_id IS NOT NULL;
