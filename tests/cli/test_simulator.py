"""`etp simulate` as a subprocess against the real stack: each fault mode stores what it should
(read back through the API), the sensors it makes itself, Ctrl-C, refused tokens."""

import asyncio
import itertools
import json
import os
import signal
import uuid
from datetime import datetime
from typing import Any

import pytest

from tests.cli.conftest import ETP, expect
from tests.plugins.waiting import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture
def make_sensor(daemons, account):
    async def make(name: str = "probe") -> dict[str, Any]:
        made = await daemons["gateway"].post(
            "/api/v1/sensors",
            json={"project_id": account.project_id, "name": name, "type": "pressure",
                  "input_unit": "mV", "display_unit": "Pa",
                  "conversion_profile": {"version": "v1", "kind": "linear",
                                         "payload": {"a": 2, "b": 1}}},
            headers=account.headers,
        )  # fmt: skip
        return await expect(made, 201)

    return make


@pytest.fixture
async def running_run(etp) -> str:
    started = await etp("run", "start", "-p", "Wind tunnel", "-e", "sim", "-n", "r", "--json")
    assert started.code == 0, started
    return started.json["id"]


async def stored(daemons, account, **query: str) -> list[dict[str, Any]]:
    """Every stored reading of the query, in (timestamp, batch, position) order."""
    page = await expect(
        await daemons["gateway"].get(
            "/api/v1/telemetry", params={**query, "limit": "10000"}, headers=account.headers
        ),
        200,
    )
    assert page["next_cursor"] is None
    return page["items"]


def seconds(reading: dict[str, Any], field: str = "timestamp") -> float:
    return datetime.fromisoformat(reading[field]).timestamp()


async def simulate(etp, *args: str) -> dict[str, Any]:
    result = await etp("simulate", *args, "--json")
    assert result.code == 0, result
    assert result.stdout.count("\n") == 1  # one JSON document; the rest went to stderr
    return result.json


async def test_late_readings_arrive_after_the_capture_stopped_and_are_marked_late(
    etp, daemons, account, running_run
):
    summary = await simulate(
        etp, "--project", account.project_id, "--sensors", "2", "--linear", "2,1",
        "--run", running_run, "--capture", "--start=-60s", "--duration", "60s",
        "--rate", "5", "--batch-size", "25", "--late", "1", "--late-by", "22s",
    )  # fmt: skip

    session_id = summary["capture_session_id"]
    session = await expect(
        await daemons["gateway"].get(
            f"/api/v1/runs/{running_run}/capture-sessions/{session_id}", headers=account.headers
        ),
        200,
    )
    assert session["status"] == "succeeded"
    readings = await stored(daemons, account, capture_session_id=session_id)
    assert len(readings) == summary["points_accepted"] == 2 * 300
    assert {r["sensor_id"] for r in readings} == {s["id"] for s in summary["created_sensors"]}
    # Measured before the sensors (and their profiles) existed: no profile converts them.
    assert {r["conversion_status"] for r in readings} == {"no_profile"}
    # Every batch is sent 22 s after it was measured (5 s batches): those of the last 25 s
    # were still held back at the end, and sent after the capture stopped.
    late = [r for r in readings if r["late"]]
    assert len(late) == summary["points_late"] == 2 * 5 * 25
    cut = max(seconds(r) for r in readings) - 24.9  # between the last on-time reading and the next
    assert min(seconds(r) for r in late) > cut
    assert max(seconds(r) for r in readings if not r["late"]) < cut


async def test_duplicate_resends_are_stored_once(etp, daemons, account, make_sensor):
    sensor = await make_sensor()

    summary = await simulate(
        etp, "--token", sensor["token"], "--start=-30s", "--duration", "30s", "--rate", "10",
        "--batch-size", "10", "--duplicate", "0.5", "--seed", "1",
    )  # fmt: skip

    resent = summary["faults"]["duplicate_batches"]
    assert resent > 0
    assert summary["duplicate_answers"] == resent
    readings = await stored(daemons, account, sensor_id=sensor["id"])
    assert len(readings) == summary["points_accepted"] == summary["points_sent"] == 300
    assert len({r["timestamp"] for r in readings}) == 300


async def test_out_of_order_batches_are_all_stored(etp, daemons, account, make_sensor):
    sensor = await make_sensor()

    summary = await simulate(
        etp, "--token", sensor["token"], "--start=-30s", "--duration", "30s", "--rate", "10",
        "--batch-size", "10", "--out-of-order", "0.5", "--seed", "1",
    )  # fmt: skip

    assert summary["faults"]["reordered_batches"] > 0
    readings = await stored(daemons, account, sensor_id=sensor["id"])
    assert len(readings) == 300
    arrivals = [seconds(r, "received_at") for r in readings]  # in timestamp order
    assert arrivals != sorted(arrivals)


async def test_a_drifting_clock_shows_between_timestamp_and_received_at(
    etp, daemons, account, make_sensor
):
    sensor = await make_sensor()

    # 30 s a minute fast, from 5 s slow: device time is received_at - 5 s + half the time.
    await simulate(
        etp, "--token", sensor["token"], "--duration", "3s", "--rate", "10",
        "--batch-size", "5", "--drift", "30", "--clock-offset=-5s",
    )  # fmt: skip

    readings = await stored(daemons, account, sensor_id=sensor["id"])
    lags = [seconds(r, "received_at") - seconds(r) for r in readings]
    assert len(lags) == 30
    assert 4.5 < lags[0] < 6.0
    assert lags[-1] < lags[0] - 1.0  # the clock gained ~1.5 s in 3 s


async def test_dropouts_leave_gaps_and_channels_are_stored_as_signals(
    etp, daemons, account, make_sensor
):
    sensor = await make_sensor()

    summary = await simulate(
        etp, "--token", sensor["token"], "--start=-30s", "--duration", "30s", "--rate", "5",
        "--batch-size", "30", "--dropout", "10s/4s", "--channels", "lift,drag,yaw",
        "--waveform", "square",
    )  # fmt: skip

    assert summary["faults"]["dropouts"] == 2
    readings = await stored(daemons, account, sensor_id=sensor["id"])
    assert len(readings) == 3 * 5 * (30 - 2 * 4)
    by_signal = {
        signal: [seconds(r) for r in group]
        for signal, group in itertools.groupby(
            sorted(readings, key=lambda r: r["signal"]), key=lambda r: r["signal"]
        )
    }
    assert sorted(by_signal) == ["drag", "lift", "yaw"]
    for times in by_signal.values():
        gaps = [round(b - a, 1) for a, b in itertools.pairwise(sorted(times)) if b - a > 0.3]
        assert gaps == [4.2, 4.2]


async def test_sensors_it_makes_declare_its_channels_and_take_their_readings(etp, daemons, account):
    summary = await simulate(
        etp, "--project", account.project_id, "--sensors", "1", "--channels", "lift,drag",
        "--start=-10s", "--duration", "10s", "--rate", "2", "--batch-size", "10",
    )  # fmt: skip

    [made] = summary["created_sensors"]
    sensor = await expect(
        await daemons["gateway"].get(f"/api/v1/sensors/{made['id']}", headers=account.headers),
        200,
    )
    assert sensor["channels"] == [
        {"name": "lift", "unit": "V"},
        {"name": "drag", "unit": "V"},
    ]
    readings = await stored(daemons, account, sensor_id=made["id"])
    assert len(readings) == summary["points_accepted"] == 2 * 2 * 10
    assert {r["signal"] for r in readings} == {"lift", "drag"}
    drag = await stored(daemons, account, sensor_id=made["id"], signal="drag")
    assert len(drag) == 2 * 10


async def test_ctrl_c_stops_cleanly_with_a_summary(gateway_url, account, daemons, make_sensor):
    sensor = await make_sensor()
    process = await asyncio.create_subprocess_exec(
        ETP, "simulate", "--token", sensor["token"], "--rate", "20", "--batch-size", "5",
        "--late", "0.5", "--late-by", "1h", "--seed", "7", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "ETP_URL": gateway_url, "ETP_API_KEY": account.key},
    )  # fmt: skip
    try:

        async def some_stored() -> bool:
            return len(await stored(daemons, account, sensor_id=sensor["id"])) >= 20

        await eventually(some_stored, within=15, interval=0.2, what="readings stored")
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(15):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert process.returncode == 0, err.decode()
    summary = json.loads(out)
    assert summary["stopped_by"] == "interrupt"
    assert summary["points_failed"] == summary["points_unsent"] == 0
    # Batches 1, 4, 5 and 8 are late (seed 7), held back an hour: they were sent at the stop,
    # and everything measured is stored.
    readings = await stored(daemons, account, sensor_id=sensor["id"])
    assert len(readings) == summary["points_accepted"] == summary["points_sent"]
    assert summary["faults"]["late_batches"] > 0
    times = sorted(seconds(r) for r in readings)
    assert max(b - a for a, b in itertools.pairwise(times)) < 0.06  # none missing (20 a second)
    assert [r["physical_value"] for r in readings] == pytest.approx(
        [2 * r["raw_value"] + 1 for r in readings]
    )


async def test_a_refused_token_ends_with_the_auth_exit_code(etp):
    forged = f"etps_{uuid.uuid4().hex}_{'x' * 43}"

    result = await etp("simulate", "--token", forged, "--duration", "5s", "--json")

    assert result.code == 4, result
    assert result.json["stopped_by"] == "refused"
    assert result.json["rejections"] == {"invalid_token": 1}
    assert result.json["sensors"][0]["refused"].startswith("401 invalid_token")


async def test_bad_arguments_are_usage_errors(etp):
    no_sensors = await etp("simulate", "--duration", "1s")
    bad_fault = await etp("simulate", "--token", f"etps_{uuid.uuid4().hex}_x", "--late", "2")

    assert no_sensors.code == bad_fault.code == 2
    assert "no sensors" in no_sensors.stderr
    assert "fraction" in bad_fault.stderr
