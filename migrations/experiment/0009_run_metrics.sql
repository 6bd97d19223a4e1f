-- Run metrics: step metrics that training code logs into a run (owned by the experiment service).
--
-- `run_metrics` holds every point, written with COPY; `run_metric_summaries` keeps one row per
-- (run, name), updated in the same transaction as the points, so reading a run's metrics never
-- scans its points. `run_metric_batches` makes a resend with the same batch id a no-op.

CREATE TABLE run_metric_batches (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id          uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    client_batch_id text CHECK (char_length(client_batch_id) BETWEEN 1 AND 200),
    points          integer NOT NULL CHECK (points > 0),
    late            boolean NOT NULL DEFAULT false,
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, client_batch_id)
);
CREATE INDEX run_metric_batches_run_idx ON run_metric_batches (run_id, id);

-- Points reference their batch (not the run) so that deleting a run cascades through the
-- batches; NaN and ±Infinity are kept as logged.
CREATE TABLE run_metrics (
    batch_id    bigint NOT NULL REFERENCES run_metric_batches (id) ON DELETE CASCADE,
    run_id      uuid NOT NULL,
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 250),
    step        bigint NOT NULL,
    value       double precision NOT NULL,
    "timestamp" timestamptz NOT NULL,
    late        boolean NOT NULL DEFAULT false
);
CREATE INDEX run_metrics_series_idx ON run_metrics (run_id, name, step);
CREATE INDEX run_metrics_batch_idx ON run_metrics (batch_id);

-- min/max/sum cover the finite values only (NULL while there are none); `count` counts every
-- point, NaN and infinities included; `last` is the value at the highest step (latest timestamp
-- on a tie).
CREATE TABLE run_metric_summaries (
    run_id         uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name           text NOT NULL,
    count          bigint NOT NULL,
    finite_count   bigint NOT NULL,
    min            double precision,
    max            double precision,
    sum            double precision,
    last           double precision NOT NULL,
    last_step      bigint NOT NULL,
    last_timestamp timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, name)
);
