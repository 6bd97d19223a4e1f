-- Run metrics: step metrics that training code logs into a run (owned by the experiment service).
--
-- `run_metrics` holds every point, written with COPY; `run_metric_summaries` keeps one row per
-- (run, name), updated in the same transaction as the points, so reading a run's metrics never
-- scans its points. `run_metric_batches` makes a resend with the same batch id a no-op.
-- `run_metric_tiles` keeps the extremes of each metric per tile of steps, also on write, so a
-- downsampled chart of any range reads a few thousand tiles instead of the points.

CREATE TABLE run_metric_batches (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id          uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    client_batch_id text CHECK (char_length(client_batch_id) BETWEEN 1 AND 200),
    points          integer NOT NULL CHECK (points > 0),
    late            boolean NOT NULL DEFAULT false,
    received_at     timestamptz NOT NULL DEFAULT now(),
    logged_by       uuid NOT NULL,
    UNIQUE (run_id, client_batch_id)
);
CREATE INDEX run_metric_batches_run_idx ON run_metric_batches (run_id, id);

-- A point is (batch_id, seq): its batch and its place in it. No foreign keys: COPY would check
-- each point's one by one; the points (and tiles) of a deleted run go with it by the trigger
-- below. NaN and ±Infinity are kept as logged.
CREATE TABLE run_metrics (
    batch_id    bigint NOT NULL,
    seq         integer NOT NULL,
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

-- Per metric and tile of `width` steps (16, 64, 256, … 1048576: powers of 4; tile =
-- floor(step / width)): its first and last point by step (on a tie, the first and the last
-- stored) and its lowest and highest finite values with their steps (NULL while it has none).
CREATE TABLE run_metric_tiles (
    run_id     uuid NOT NULL,
    name       text NOT NULL,
    width      integer NOT NULL,
    tile       bigint NOT NULL,
    first      double precision NOT NULL,
    first_step bigint NOT NULL,
    last       double precision NOT NULL,
    last_step  bigint NOT NULL,
    min        double precision,
    min_step   bigint,
    max        double precision,
    max_step   bigint,
    PRIMARY KEY (run_id, name, width, tile)
);

CREATE FUNCTION delete_run_metrics() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM run_metrics WHERE run_id IN (SELECT id FROM gone);
    DELETE FROM run_metric_tiles WHERE run_id IN (SELECT id FROM gone);
    RETURN NULL;
END;
$$;
CREATE TRIGGER runs_delete_metrics AFTER DELETE ON runs
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION delete_run_metrics();
