-- Stored answers of creating POSTs sent with an Idempotency-Key (backend_common.idempotency).

CREATE TABLE request_idempotency (
    user_id      uuid NOT NULL,
    key          text NOT NULL,
    fingerprint  bytea NOT NULL,
    status       smallint,
    body         bytea,
    content_type text,
    location     text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX request_idempotency_expires_idx ON request_idempotency (expires_at);
