"""The MLflow mapping of `etp import mlflow` without a stack: tags, names, statuses, metric
points and how histories are cut into batches."""

import math

import pytest

from etp.mlflow_import.mapping import (
    MlflowRun,
    Point,
    Source,
    changed_fields,
    etp_tags,
    git_sha,
    plan_chunks,
    run_fields,
    status_path,
)
from etp.mlflow_import.source import public_uri, tracking_uri

SOURCE = Source("file:///data/mlruns", "abc", "1")


def _run(**changes) -> MlflowRun:
    fields = {
        "run_id": "abc",
        "experiment_id": "1",
        "run_name": "baseline",
        "status": "FINISHED",
        "start_time": 1000,
        "end_time": 2000,
        "params": {"lr": "0.1"},
        "tags": {},
        "metric_keys": [],
    }
    return MlflowRun(**(fields | changes))


def test_tags_that_are_valid_etp_tags_are_copied_as_key_value_at_most_fifty():
    tags = {f"k{i:02}": "v" for i in range(60)} | {"note": "two words", "long": "x" * 70}

    copied = etp_tags(tags)

    assert copied == [f"k{i:02}:v" for i in range(50)]
    assert etp_tags({"a/b.c": "d+e-f:g"}) == ["a/b.c:d+e-f:g"]


@pytest.mark.parametrize(
    ("value", "sha"),
    [("0123abc", "0123abc"), ("0123ABC", "0123abc"), ("0123", None), ("a" * 41, None)],
)
def test_the_git_commit_tag_fills_git_sha_only_when_it_is_a_sha(value, sha):
    assert git_sha({"mlflow.source.git.commit": value}) == sha


def test_run_fields_keep_every_tag_and_the_origin_in_metadata():
    run = _run(run_name=None, status="KILLED", tags={"mlflow.runName": "r" * 250, "x": "y z"})

    fields = run_fields(run, SOURCE)

    assert fields["name"] == "r" * 200
    assert fields["tags"] == []
    assert fields["git_sha"] is None
    assert fields["metadata"] == {
        "mlflow": {
            "source": {
                "tracking_uri": "file:///data/mlruns",
                "run_id": "abc",
                "experiment_id": "1",
            },
            "tags": {"mlflow.runName": "r" * 250, "x": "y z"},
            "run_name": "r" * 250,
            "start_time": 1000,
            "end_time": 2000,
            "status": "KILLED",
        },
    }
    assert run_fields(_run(run_name=None), SOURCE)["name"] == "abc"


def test_only_what_differs_is_changed():
    wanted = run_fields(_run(tags={"b": "1", "a": "2"}), SOURCE)
    stored = {**wanted, "tags": ["b:1", "a:2"], "git_sha": "0123abc"}

    assert changed_fields(run_fields(_run(tags={"b": "1", "a": "2"}), SOURCE, stored), stored) == {}
    assert changed_fields(wanted, {**stored, "params": {}}) == {"params": {"lr": "0.1"}}


def test_what_was_changed_in_etp_is_kept_unless_mlflow_changed_it_too():
    mlflow_run = _run(tags={"mlflow.runName": "baseline", "team": "a"})
    imported = run_fields(mlflow_run, SOURCE)
    stored = {
        **imported,
        "name": "renamed in ETP",
        "params": {"lr": "0.1", "added": 1},
        "tags": ["reviewed", "mlflow.runName:baseline", "team:a"],
        "metadata": {**imported["metadata"], "note": "x"},
    }

    assert changed_fields(run_fields(mlflow_run, SOURCE, stored), stored) == {}

    renamed = _run(run_name="v2", tags={"mlflow.runName": "v2", "team": "b"})
    again = run_fields(renamed, SOURCE, stored)
    assert again["name"] == "v2"
    assert again["tags"] == ["reviewed", "mlflow.runName:v2", "team:b"]
    assert again["params"] == {"lr": "0.1", "added": 1}
    assert again["metadata"]["note"] == "x"
    assert again["metadata"]["mlflow"]["tags"] == {"mlflow.runName": "v2", "team": "b"}


@pytest.mark.parametrize(
    ("current", "wanted", "moves"),
    [
        ("draft", "succeeded", ["running", "succeeded"]),
        ("draft", "failed", ["running", "failed"]),
        ("draft", "running", ["running"]),
        ("draft", "draft", []),
        ("running", "succeeded", ["succeeded"]),
        ("running", "running", []),
        ("succeeded", "running", []),  # a finished run stays finished
        ("failed", "succeeded", []),
        ("archived", "succeeded", []),
    ],
)
def test_status_moves_follow_the_state_machine(current, wanted, moves):
    assert status_path(current, wanted) == moves


def test_points_keep_nan_and_infinities_and_drop_timestamps_the_service_refuses():
    now = 1_800_000_000_000

    assert Point("m", math.nan, 0, 1500).as_json(now) == {
        "name": "m",
        "value": "NaN",
        "step": 0,
        "timestamp": "1970-01-01T00:00:01.500+00:00",
    }
    assert Point("m", -math.inf, 1, now).as_json(now)["value"] == "-Infinity"
    assert "timestamp" not in Point("m", 1.0, 2, now + 301_000).as_json(now)
    assert "timestamp" not in Point("m", 1.0, 2, -5).as_json(now)


def _history(name: str, count: int) -> list[Point]:
    return [Point(name, float(i), i, i) for i in range(count)]


def test_histories_are_packed_into_batches_of_at_most_ten_thousand_points():
    histories = {"loss": _history("loss", 12_500), "acc": _history("acc", 9_000)}

    chunks = plan_chunks("run1", histories, {}, 10_000)

    assert [len(c.points) for c in chunks] == [10_000, 10_000, 1_500]
    assert chunks[0].ranges == (("acc", 0, 9_000), ("loss", 0, 1_000))
    assert chunks[1].ranges == (("loss", 1_000, 11_000),)
    assert [p.step for p in chunks[1].points] == list(range(1_000, 11_000))
    assert len({c.batch_id for c in chunks}) == 3
    assert all(len(c.batch_id) <= 200 for c in chunks)


def test_batch_ids_are_the_same_when_planned_again_and_points_stored_are_skipped():
    histories = {"loss": _history("loss", 25)}

    first = plan_chunks("run1", histories, {}, 10)
    again = plan_chunks("run1", histories, {}, 10)
    resumed = plan_chunks("run1", histories, {"loss": 10}, 10)
    other_run = plan_chunks("run2", histories, {}, 10)

    assert [c.batch_id for c in again] == [c.batch_id for c in first]
    assert [c.batch_id for c in resumed] == [c.batch_id for c in first[1:]]
    assert other_run[0].batch_id != first[0].batch_id
    assert plan_chunks("run1", histories, {"loss": 25}, 10) == []
    assert plan_chunks("run1", histories, {"loss": 40}, 10) == []


def test_source_uris():
    assert tracking_uri("http://mlflow:5000") == "http://mlflow:5000"
    assert tracking_uri("/data/mlruns") == "file:///data/mlruns"
    assert public_uri("https://ada:secret@mlflow.example.org:8443/x") == (
        "https://mlflow.example.org:8443/x"
    )
    assert public_uri("file:///data/mlruns") == "file:///data/mlruns"
