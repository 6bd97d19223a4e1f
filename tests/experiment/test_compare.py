"""GET /api/v1/runs:compare: params side by side, metric summaries with deltas against a
baseline, telemetry statistics per capture session and bound sensor, and the CSV table; who may
compare, and every bad query refused."""

import csv
import io
import uuid

import pytest

from tests.experiment.compare_kit import (
    COMPARE,
    DIFFERING_METRICS,
    DIFFERING_PARAMS,
    METRICS,
    PARAMS,
    assert_close,
    build_scene,
    compare,
    compare_response,
    delta_of,
    instant,
    json_number,
    log_metrics,
    new_ids,
    send_readings,
    started,
    stats_of,
    summary_of,
)
from tests.experiment.factories import create_experiment, create_run
from tests.plugins.roles import role_matrix
from tests.problems import assert_problem
from tests.telemetry_ingest.ingest_api import bind, create_sensor, linear, stop_capture


@pytest.fixture
async def scene(client, ingest, owner, experiment, clock):
    return await build_scene(client, ingest, owner, experiment, clock)


def expected_metrics(
    scene, baseline: int, *, only_diff: bool = False, order: tuple[int, ...] = (0, 1, 2)
) -> list[dict]:
    """The metric rows for the runs in `order` (indexes of scene.runs)."""
    names = sorted({name for series in METRICS for name in series})
    rows = []
    for name in names:
        differs = name in DIFFERING_METRICS
        if only_diff and not differs:
            continue
        reference = METRICS[baseline].get(name)
        values = {}
        for index in order:
            run, series = scene.runs[index], METRICS[index]
            if name not in series:
                continue
            summary = summary_of(series[name])
            delta = None if reference is None else delta_of(summary, summary_of(reference))
            shown = {key: json_number(value) for key, value in summary.items()}
            values[run["id"]] = {**shown, "delta": delta}
        rows.append({"name": name, "differs": differs, "values": values})
    return rows


def expected_telemetry(scene) -> list[dict]:
    """Per run, session, bound sensor (by name, then id) and signal, from the readings sent."""
    first, second, third = scene.sessions
    bound = [
        sorted(scene.sensors.values(), key=lambda s: (s["name"], s["id"])),
        [scene.sensors["a"]],
        [],
    ]
    sessions = [[first, second], [third], []]
    letter = {sensor["id"]: key for key, sensor in scene.sensors.items()}
    rows = []
    for run, its_sessions, its_sensors in zip(scene.runs, sessions, bound, strict=True):
        for session in its_sessions:
            stopped = instant(session["stopped_at"]) if session["stopped_at"] else None
            for sensor in its_sensors:
                place = {
                    "run_id": run["id"],
                    "capture_session_id": session["id"],
                    "ordinal_number": session["ordinal_number"],
                    "started_at": session["started_at"],
                    "stopped_at": session["stopped_at"],
                    "sensor_id": sensor["id"],
                    "sensor_name": sensor["name"],
                }
                sent = scene.sent.get((session["id"], letter[sensor["id"]]), [])
                signals = sorted({s.signal for s in sent})
                if not signals:
                    empty = {"count": 0, "min": None, "max": None, "avg": None, "twa": None}
                    rows.append({**place, "signal": None, **empty})
                for signal in signals:
                    of_signal = [s for s in sent if s.signal == signal]
                    rows.append({**place, "signal": signal, **stats_of(of_signal, stopped)})
    return rows


def assert_telemetry(actual: list[dict], expected: list[dict]) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        for key in ("started_at", "stopped_at"):
            if want[key] is not None:
                assert instant(got.pop(key)) == instant(want[key])
            else:
                assert got.pop(key) is None
        assert_close(got, {k: v for k, v in want.items() if k not in ("started_at", "stopped_at")})


async def test_compare_shows_each_runs_params_metrics_and_telemetry(client, viewer, scene):
    body = await compare(client, viewer, scene.ids)

    assert body["baseline"] == scene.ids[0]
    assert [run["id"] for run in body["runs"]] == scene.ids
    assert [run["name"] for run in body["runs"]] == [run["name"] for run in scene.runs]
    assert body["params"] == [
        {
            "key": key,
            "differs": key in DIFFERING_PARAMS,
            "values": {
                run["id"]: p[key] for run, p in zip(scene.runs, PARAMS, strict=True) if key in p
            },
        }
        for key in sorted({key for p in PARAMS for key in p})
    ]
    assert_close(body["metrics"], expected_metrics(scene, baseline=0))
    assert_telemetry(body["telemetry"], expected_telemetry(scene))


async def test_compare_gives_deltas_against_the_chosen_baseline(client, owner, scene):
    ids = [scene.ids[2], scene.ids[0], scene.ids[1]]

    body = await compare(client, owner, ids, baseline=scene.ids[1])

    assert body["baseline"] == scene.ids[1]
    assert [run["id"] for run in body["runs"]] == ids
    loss = next(row for row in body["metrics"] if row["name"] == "loss")
    assert list(loss["values"]) == ids
    assert loss["values"][scene.ids[0]]["delta"] == pytest.approx(
        {
            "min": 0.4 - 0.3,
            "max": 1.0 - 0.9,
            "avg": (1.0 + 0.8 + 0.5 + 0.4) / 4 - 0.6,
            "last": 0.4 - 0.3,
        }
    )
    assert loss["values"][scene.ids[1]]["delta"] == {"min": 0, "max": 0, "avg": 0, "last": 0}
    # The baseline has no such metric: no deltas.
    blowup = next(row for row in body["metrics"] if row["name"] == "blowup")
    assert blowup["values"] == {
        scene.ids[0]: {
            "count": 2,
            "min": None,
            "max": None,
            "avg": None,
            "last": "-Infinity",
            "last_step": 1,
            "delta": None,
        }
    }
    assert_close(body["metrics"], expected_metrics(scene, baseline=1, order=(2, 0, 1)))


async def test_only_diff_leaves_out_what_every_run_shares(client, owner, scene):
    body = await compare(client, owner, scene.ids, only_diff="true")

    assert {row["key"] for row in body["params"]} == DIFFERING_PARAMS
    assert all(row["differs"] for row in body["params"])
    assert_close(body["metrics"], expected_metrics(scene, 0, only_diff=True))
    assert_telemetry(body["telemetry"], expected_telemetry(scene))


async def test_values_whose_sums_overflow_still_get_their_statistics(
    client, ingest, owner, experiment, clock
):
    clock.advance(-60)
    sensor = await create_sensor(client, owner, experiment["project_id"], profile=linear(2.0, 1.0))
    clock.advance(60)
    runs = [await create_run(client, owner, experiment["id"]) for _ in range(2)]
    await bind(client, owner, runs[0]["id"], sensor["id"])
    session = await started(client, owner, runs[0]["id"])
    # Physical values of 1e308 and more: any two of them sum past the largest float.
    raw = [(-3.0, 5e307), (-2.0, 6e307), (-1.0, 7e307), (-0.5, 8e307)]
    sent = await send_readings(ingest, sensor, runs[0]["id"], session, raw)
    session = await stop_capture(client, owner, runs[0]["id"], session["id"])

    body = await compare(client, owner, [run["id"] for run in runs])

    (row,) = body["telemetry"]
    expected = stats_of(sent, instant(session["stopped_at"]))
    assert_close({key: row[key] for key in expected}, expected)


async def test_a_metric_whose_sum_is_past_a_double_has_an_infinite_mean(client, owner, experiment):
    runs = [await create_run(client, owner, experiment["id"]) for _ in range(2)]
    await log_metrics(client, owner, runs[0]["id"], {"huge": [1e308, 1e308]})
    await log_metrics(client, owner, runs[1]["id"], {"huge": [1.0, 3.0]})

    body = await compare(client, owner, [runs[1]["id"], runs[0]["id"]])

    (huge,) = body["metrics"]
    assert huge["values"][runs[0]["id"]] == {
        "count": 2,
        "min": 1e308,
        "max": 1e308,
        "avg": "Infinity",
        "last": 1e308,
        "last_step": 1,
        "delta": {"min": 1e308 - 1.0, "max": 1e308 - 3.0, "avg": None, "last": 1e308 - 3.0},
    }


@pytest.mark.unchecked_answers(
    "OpenAPI has one style per parameter: the spec gives the repeated form"
)
async def test_ids_may_be_given_comma_separated(client, owner, scene):
    response = await client.get(
        COMPARE, params={"ids": ",".join(reversed(scene.ids))}, headers=owner.headers
    )

    assert response.status == 200
    assert [run["id"] for run in (await response.json())["runs"]] == scene.ids[::-1]


async def test_runs_without_metrics_or_sensors_compare_empty(client, owner, experiment):
    runs = [await create_run(client, owner, experiment["id"]) for _ in range(2)]

    body = await compare(client, owner, [run["id"] for run in runs])

    assert (body["params"], body["metrics"], body["telemetry"]) == ([], [], [])


async def test_the_csv_table_has_a_column_per_run(client, viewer, scene):
    response = await compare_response(client, viewer, scene.ids, format="csv")

    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="runs-compare.csv"'
    text = await response.text()
    assert text.endswith("\r\n")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["section", "name", "stat", "differs", *scene.ids]
    cells = {tuple(row[:3]): row[3:] for row in table[1:]}
    assert cells[("run", "name", "")] == ["", *(run["name"] for run in scene.runs)]
    assert cells[("run", "baseline", "")] == ["", "true", "false", "false"]
    assert cells[("param", "lr", "")] == ["true", "0.01", "0.02", "0.01"]
    assert cells[("param", "arch", "")][0] == "false"
    assert cells[("param", "augment", "")] == ["true", "true", "1", "true"]
    assert cells[("param", "seed", "")] == ["true", "", "", "null"]
    # Text that a spreadsheet would run as a formula stays text.
    assert cells[("param", "cmd", "")] == ["false", "'=1+2", "'=1+2", "'=1+2"]
    assert cells[("metric", "loss", "count")] == ["true", "5", "3", "3"]
    assert cells[("metric", "blowup", "last")] == ["true", "-Infinity", "", ""]
    assert float(cells[("metric", "loss", "delta_last")][2]) == pytest.approx(0.3 - 0.4)
    assert cells[("metric", "acc", "delta_last")] == ["false", "0.0", "0.0", "0.0"]
    first = scene.sessions[0]
    a = scene.sensors["a"]
    twa = stats_of(scene.sent[(first["id"], "a")], instant(first["stopped_at"]))["twa"]
    row = cells[("telemetry", f"{a['id']}/value/1", "twa")]
    assert row[0] == ""
    assert float(row[1]) == pytest.approx(twa, rel=1e-12)
    assert float(row[2]) == pytest.approx(
        stats_of(
            scene.sent[(scene.sessions[2]["id"], "a")], instant(scene.sessions[2]["stopped_at"])
        )["twa"],
        rel=1e-12,
    )
    assert row[3] == ""
    c = scene.sensors["c"]
    assert cells[("telemetry", f"{c['id']}//1", "count")] == ["", "0", "", ""]
    assert cells[("telemetry", f"{c['id']}//1", "sensor_name")] == ["", c["name"], "", ""]


# --- who may compare ----------------------------------------------------------------------------

MATRIX = {"compare_runs": {"owner": 200, "editor": 200, "viewer": 200, "stranger": 404}}


@role_matrix(MATRIX)
async def test_compare_by_role(
    client, owner, experiment, caller_as, project_id, route, role, expected
):
    runs = [await create_run(client, owner, experiment["id"]) for _ in range(2)]

    response = await compare_response(client, caller_as(role, project_id), [r["id"] for r in runs])

    if expected == 200:
        assert response.status == 200, await response.text()
    else:
        await assert_problem(response, 404, "run_not_found")


@pytest.fixture
async def foreign_run(client, auth_stub):
    """A run of another project, whose owner is nobody in this test's project."""
    other = uuid.uuid4()
    stranger = auth_stub.member(other, "owner")
    experiment = await create_experiment(client, stranger, other)
    return await create_run(client, stranger, experiment["id"])


async def test_another_projects_run_is_not_found(client, owner, experiment, foreign_run):
    run = await create_run(client, owner, experiment["id"])

    problem = await assert_problem(
        await compare_response(client, owner, [run["id"], foreign_run["id"]]), 404, "run_not_found"
    )

    assert foreign_run["id"] in problem["detail"]


async def test_a_run_that_does_not_exist_is_not_found(client, owner, experiment):
    run = await create_run(client, owner, experiment["id"])
    missing = str(uuid.uuid4())

    problem = await assert_problem(
        await compare_response(client, owner, [run["id"], missing]), 404, "run_not_found"
    )

    assert missing in problem["detail"]


async def test_runs_of_two_readable_projects_are_refused(
    client, auth_stub, owner, experiment, foreign_run
):
    auth_stub.grant(owner, uuid.UUID(foreign_run["project_id"]), "viewer")
    run = await create_run(client, owner, experiment["id"])

    await assert_problem(
        await compare_response(client, owner, [run["id"], foreign_run["id"]]),
        422,
        "runs_in_several_projects",
    )


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer forged.token.here"}])
async def test_compare_needs_a_valid_token(client, headers):
    response = await client.get(COMPARE, params=[("ids", i) for i in new_ids(2)], headers=headers)

    await assert_problem(response, 401, "unauthorized")


# --- bad queries --------------------------------------------------------------------------------

TWO = new_ids(2)
BAD_QUERIES = {
    "no ids": ([], "ids"),
    "one id": ([("ids", TWO[0])], "ids"),
    "101 ids": ([("ids", run_id) for run_id in new_ids(101)], "ids"),
    "101 ids comma-separated": ([("ids", ",".join(new_ids(101)))], "ids"),
    "a repeated id": ([("ids", TWO[0]), ("ids", TWO[1]), ("ids", TWO[0])], "ids"),
    "a bad uuid": ([("ids", TWO[0]), ("ids", "not-a-uuid")], "ids.1"),
    "an empty id": ([("ids", f"{TWO[0]},")], "ids.1"),
    "a baseline not among ids": (
        [("ids", TWO[0]), ("ids", TWO[1]), ("baseline", str(uuid.uuid4()))],
        "baseline",
    ),
    "a bad baseline": ([("ids", TWO[0]), ("ids", TWO[1]), ("baseline", "7")], "baseline"),
    "only_diff not a boolean": (
        [("ids", TWO[0]), ("ids", TWO[1]), ("only_diff", "maybe")],
        "only_diff",
    ),
    "an unknown format": ([("ids", TWO[0]), ("ids", TWO[1]), ("format", "xml")], "format"),
    "an unknown parameter": ([("ids", TWO[0]), ("ids", TWO[1]), ("sort", "name")], "sort"),
}


@pytest.mark.parametrize(("query", "field"), BAD_QUERIES.values(), ids=BAD_QUERIES.keys())
async def test_a_bad_query_is_refused(client, owner, query, field):
    response = await client.get(COMPARE, params=query, headers=owner.headers)

    problem = await assert_problem(response, 422, "validation_failed")

    assert [(error["in"], error["field"]) for error in problem["errors"]] == [("query", field)]
