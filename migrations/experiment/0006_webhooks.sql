-- Webhooks: subscriptions, the transactional outbox (events and one delivery per event and
-- subscription) and the log of every delivery attempt.

CREATE TABLE webhook_subscriptions (
    id                         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id                 uuid NOT NULL,
    target_url                 text NOT NULL CHECK (char_length(target_url) BETWEEN 1 AND 2000),
    -- Event types, or '{*}' for all of them.
    event_types                text[] NOT NULL CHECK (cardinality(event_types) BETWEEN 1 AND 50),
    active                     boolean NOT NULL DEFAULT true,
    -- Why the service turned the subscription off (e.g. the receiver answered 410 Gone).
    disabled_reason            text,
    description                text NOT NULL DEFAULT '' CHECK (char_length(description) <= 2000),
    -- Signing secrets (`whsec_<base64>`): kept readable, the dispatcher signs with them. After a
    -- rotation the previous one signs too until previous_secret_expires_at.
    secret                     text NOT NULL,
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    created_by                 uuid NOT NULL,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_subscriptions_project_idx ON webhook_subscriptions (project_id, created_at, id);
CREATE TRIGGER webhook_subscriptions_updated_at BEFORE UPDATE ON webhook_subscriptions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The outbox: written in the transaction of the change it announces. `id` is the `webhook-id`
-- header, the same on every try; `payload` is the body sent.
CREATE TABLE webhook_events (
    id          uuid PRIMARY KEY,
    project_id  uuid NOT NULL,
    type        text NOT NULL CHECK (char_length(type) BETWEEN 1 AND 64),
    payload     jsonb NOT NULL,
    occurred_at timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per event and subscription, fanned out when the event is written. A dispatcher claims
-- a due row by giving it a fresh lease_token and lease_until; only the holder of the current
-- token may record the outcome, and an expired lease makes the row due again.
CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id        uuid NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    subscription_id uuid NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    project_id      uuid NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivering', 'delivered', 'failed', 'dead')),
    -- Tries of the current round (a redelivery starts a new round).
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- NULL: due at once (a new or redelivered row).
    next_attempt_at timestamptz,
    lease_token     uuid,
    lease_until     timestamptz,
    last_status     integer,
    last_error      text,
    last_attempt_at timestamptz,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, subscription_id),
    CHECK ((status = 'delivering') = (lease_token IS NOT NULL AND lease_until IS NOT NULL))
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status IN ('pending', 'failed');
CREATE INDEX webhook_deliveries_leased_idx ON webhook_deliveries (lease_until)
    WHERE status = 'delivering';
CREATE INDEX webhook_deliveries_subscription_idx
    ON webhook_deliveries (subscription_id, created_at DESC, id DESC);
CREATE TRIGGER webhook_deliveries_updated_at BEFORE UPDATE ON webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Every try of a delivery: the answer's status or the error, how long it took, the start of
-- the answer's body.
CREATE TABLE webhook_attempts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id   uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt       integer NOT NULL CHECK (attempt > 0),
    started_at    timestamptz NOT NULL,
    status_code   integer,
    error         text CHECK (char_length(error) <= 1000),
    latency_ms    integer NOT NULL CHECK (latency_ms >= 0),
    response_body text CHECK (char_length(response_body) <= 1024),
    -- The dispatcher's lease had passed to another one before it could record the outcome: this
    -- try changed nothing about the delivery.
    superseded    boolean NOT NULL DEFAULT false
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);

-- Conversion profiles whose activation has been announced: when published now (in that
-- transaction), or, for one scheduled ahead, by a dispatcher once its valid_from has passed.
-- Profiles valid before webhooks existed count as announced.
CREATE TABLE webhook_profile_activations (
    profile_id   uuid PRIMARY KEY REFERENCES conversion_profiles (id) ON DELETE CASCADE,
    announced_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO webhook_profile_activations (profile_id)
    SELECT id FROM conversion_profiles WHERE valid_from IS NOT NULL AND valid_from <= now();
