"""`etp log-metrics`, `etp artifact`, `etp export` and `etp watch` as subprocesses against the
real stack, their effects read back through the API."""

import asyncio
import contextlib
import csv
import hashlib
import io
import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from tests.cli.conftest import ETP, expect
from tests.plugins.waiting import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture
async def run_id(etp) -> str:
    started = await etp("run", "start", "-p", "Wind tunnel", "-e", "e", "-n", "r", "--json")
    assert started.code == 0, started
    return started.json["id"]


async def _points(daemons, account, run_id: str, name: str) -> list[dict]:
    """Every point of a metric, page after page."""
    points, cursor = [], None
    while True:
        query = {"limit": "500", **({"cursor": cursor} if cursor else {})}
        page = await expect(
            await daemons["gateway"].get(
                f"/api/v1/runs/{run_id}/metrics/{name}", params=query, headers=account.headers
            ),
            200,
        )
        points += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return points


async def _summaries(daemons, account, run_id: str) -> dict[str, dict]:
    page = await expect(
        await daemons["gateway"].get(f"/api/v1/runs/{run_id}/metrics", headers=account.headers),
        200,
    )
    return {m["name"]: m for m in page["items"]}


async def test_log_metrics_from_a_wide_csv_file(etp, daemons, account, run_id, tmp_path):
    path = tmp_path / "history.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["step", "loss", "val/acc"])
        for step in range(300):
            writer.writerow([step, 1 / (step + 1), "" if step % 2 else step / 300])

    logged = await etp("log-metrics", run_id, "--file", str(path), "--json")

    assert logged.code == 0, logged
    assert logged.json == {
        "run_id": run_id,
        "points": 450,
        "batches": 1,
        "accepted": 450,
        "late": 0,
        "duplicate_batches": 0,
    }
    summaries = await _summaries(daemons, account, run_id)
    assert (summaries["loss"]["count"], summaries["loss"]["last_step"]) == (300, 299)
    assert summaries["val/acc"]["count"] == 150
    loss = await _points(daemons, account, run_id, "loss")
    assert [(p["step"], p["value"]) for p in loss] == [(s, 1 / (s + 1)) for s in range(300)]


async def test_log_metrics_from_json_lines_on_stdin_in_batches(etp, daemons, account, run_id):
    lines = [
        json.dumps({"name": "loss", "value": 0.5 + step, "step": step}) for step in range(25_000)
    ]
    lines.insert(7, json.dumps({"name": "grad_norm", "value": "NaN", "step": 7}))
    lines.insert(9, "")

    logged = await etp("log-metrics", run_id, "--json", input="\n".join(lines) + "\n")

    assert logged.code == 0, logged
    assert (logged.json["points"], logged.json["accepted"]) == (25_001, 25_001)
    assert logged.json["batches"] == 3  # at most 10,000 points a request
    assert json.loads(logged.stdout.strip()) == logged.json  # nothing else on stdout
    summaries = await _summaries(daemons, account, run_id)
    assert summaries["loss"]["count"] == 25_000
    assert (summaries["loss"]["min"], summaries["loss"]["max"]) == (0.5, 24_999.5)
    assert summaries["grad_norm"]["count"] == 1
    assert summaries["grad_norm"]["finite_count"] == 0


async def test_a_bad_line_is_a_usage_error_naming_it(etp, daemons, account, run_id):
    text = "name,value,step\nloss,0.1,0\nloss,high,1\n"

    refused = await etp("log-metrics", run_id, "--format", "csv", "--json", input=text)

    assert refused.code == 2, refused
    assert refused.stdout == ""
    assert "line 3" in refused.error["detail"]


async def test_artifact_round_trip_checked_by_sha256(etp, daemons, account, run_id, tmp_path):
    content = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "model.bin"
    source.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()

    uploaded = await etp(
        "artifact",
        "upload",
        run_id,
        str(source),
        "--type",
        "model",
        "--metadata",
        '{"epoch": 3}',
        "--json",
    )

    assert uploaded.code == 0, uploaded
    artifact = uploaded.json
    assert (artifact["sha256"], artifact["size"], artifact["type"]) == (
        digest,
        len(content),
        "model",
    )
    assert artifact["metadata"] == {"epoch": 3}
    stored = await expect(
        await daemons["gateway"].get(
            f"/api/v1/artifacts/{artifact['id']}", headers=account.headers
        ),
        200,
    )
    assert stored["sha256"] == digest

    target = tmp_path / "out"
    target.mkdir()
    downloaded = await etp("artifact", "download", artifact["id"], "-o", str(target), "--json")

    assert downloaded.code == 0, downloaded
    assert downloaded.json["path"] == str(target / "model.bin")
    assert (target / "model.bin").read_bytes() == content
    assert [p.name for p in target.iterdir()] == ["model.bin"]  # no partial file left
    listed = await etp("artifact", "list", run_id, "--json")
    assert [a["id"] for a in listed.json] == [artifact["id"]]


async def test_export_runs_as_csv_json_and_parquet(etp, run_id, tmp_path):
    await etp("log-params", run_id, "lr=0.01")

    for fmt in ("csv", "json", "parquet"):
        exported = await etp("export", "runs", "-p", "Wind tunnel", "--format", fmt, "--json")
        assert exported.code == 0, exported
        assert exported.json["path"] == str(tmp_path / f"runs.{fmt}")

    rows = list(csv.DictReader(io.StringIO((tmp_path / "runs.csv").read_text())))
    assert [(r["id"], json.loads(r["params"])) for r in rows] == [(run_id, {"lr": 0.01})]
    assert [r["id"] for r in json.loads((tmp_path / "runs.json").read_text())] == [run_id]
    pq = pytest.importorskip("pyarrow.parquet")  # the parquet extra, which `make install` adds
    table = pq.read_table(tmp_path / "runs.parquet").to_pylist()
    assert [(r["id"], json.loads(r["params"]), r["status"]) for r in table] == [
        (run_id, {"lr": 0.01}, "running")
    ]
    assert table[0]["created_at"].tzinfo is not None


@pytest.fixture
async def sensor(daemons, account) -> dict:
    made = await daemons["gateway"].post(
        "/api/v1/sensors",
        json={
            "project_id": account.project_id,
            "name": "probe",
            "type": "pressure",
            "input_unit": "V",
            "display_unit": "V",
        },
        headers=account.headers,
    )
    return await expect(made, 201)


async def _ingest(daemons, sensor, values, start: datetime, signals=None) -> None:
    """The values as readings 10 ms apart, on the given channels in turn (else on `value`)."""
    readings = [
        {
            "timestamp": (start + timedelta(milliseconds=10 * i)).isoformat(),
            "raw_value": v,
            **({"meta": {"signal": signals[i % len(signals)]}} if signals else {}),
        }
        for i, v in enumerate(values)
    ]
    answer = await daemons["gateway"].post(
        "/api/v1/telemetry",
        json={"sensor_id": sensor["id"], "readings": readings},
        headers={"Authorization": f"Bearer {sensor['token']}"},
    )
    assert answer.status == 202, answer.text


async def test_export_telemetry_to_parquet_and_csv(etp, daemons, sensor, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    start = datetime.now(UTC) - timedelta(minutes=1)
    await _ingest(daemons, sensor, [float(i) for i in range(1000)], start)

    async def exported() -> list[dict] | None:
        result = await etp(
            "export",
            "telemetry",
            "--sensor",
            sensor["id"],
            "--format",
            "parquet",
            "-o",
            "t.parquet",
            "--json",
        )
        assert result.code == 0, result
        assert result.json["rows"] == len(pq.read_table(tmp_path / "t.parquet"))
        rows = pq.read_table(tmp_path / "t.parquet").to_pylist()
        return rows if len(rows) == 1000 else None  # the spool may hold the batch a moment

    rows = await eventually(exported, what="the 1,000 readings exported")
    assert [r["raw_value"] for r in rows] == [float(i) for i in range(1000)]
    assert rows[0]["timestamp"] == start
    as_csv = await etp("export", "telemetry", "--sensor", sensor["id"], "-o", "-")
    assert as_csv.code == 0, as_csv
    assert len(list(csv.DictReader(io.StringIO(as_csv.stdout)))) == 1000


async def test_export_telemetry_of_one_channel(etp, daemons, sensor):
    start = datetime.now(UTC) - timedelta(minutes=1)
    await _ingest(daemons, sensor, [float(i) for i in range(10)], start, ["total", "static"])

    async def exported() -> list[dict] | None:
        result = await etp(
            "export", "telemetry", "--sensor", sensor["id"], "--signal", "static", "-o", "-"
        )
        assert result.code == 0, result
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        return rows if len(rows) == 5 else None

    rows = await eventually(exported, what="the static channel's 5 readings exported")
    assert {row["signal"] for row in rows} == {"static"}
    assert [float(row["raw_value"]) for row in rows] == [1.0, 3.0, 5.0, 7.0, 9.0]


async def test_watch_prints_live_readings_as_json_lines(gateway_url, account, daemons, sensor):
    watcher = await asyncio.create_subprocess_exec(
        ETP,
        "watch",
        "--sensor",
        sensor["id"],
        "--signal",
        "value",
        "--count",
        "5",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "ETP_URL": gateway_url, "ETP_API_KEY": account.key},
    )
    try:
        async with asyncio.timeout(30):
            # Readings stored before the stream opens are not sent: send until it has five.
            value = 0.0
            while watcher.returncode is None:
                # A reading on another channel each time: `--signal value` leaves it out.
                await _ingest(
                    daemons, sensor, [value, value + 1], datetime.now(UTC), ["value", "x"]
                )
                value += 2
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(watcher.wait()), 0.3)
            out, err = await watcher.communicate()
    finally:
        if watcher.returncode is None:
            watcher.kill()
            await watcher.wait()

    assert watcher.returncode == 0, err.decode()
    readings = [json.loads(line) for line in out.decode().splitlines()]
    assert len(readings) == 5
    assert {r["sensor_id"] for r in readings} == {sensor["id"]}
    assert {r["signal"] for r in readings} == {"value"}
    values = [r["raw_value"] for r in readings]
    assert values == sorted(values)
    assert "readings" in err.decode()  # the count goes to stderr
