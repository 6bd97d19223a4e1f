"""The Python API (`import etp`) against the real stack: training scripts run as subprocesses (so
that interpreter exit is real), their metrics read back through the API."""

import asyncio
import os
import signal
import sys
import textwrap

import pytest

import etp
from tests.cli.conftest import expect

pytestmark = pytest.mark.e2e

TRAINING = """
import sys, time
import etp

with etp.start_run(project=sys.argv[1], experiment="training", name="loop",
                   params={"lr": 0.1}, flush_seconds=0.2) as run:
    print(run.id, flush=True)
    for step in range(10_000):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metric("acc", step / 10_000, step=step)
        if step % 100 == 99:
            time.sleep(0.04)  # about 4 s of training
    stats = run.metrics.stats
print(f"batches={stats.batches} retries={stats.retries} accepted={stats.accepted}", flush=True)
"""


async def _script(gateway_url, account, tmp_path, source: str, *args: str):
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(source))
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(path),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "ETP_URL": gateway_url, "ETP_API_KEY": account.key},
    )


async def _get(daemons, account, path: str, **params):
    return await expect(
        await daemons["gateway"].get(path, params=params, headers=account.headers), 200
    )


async def _all_points(daemons, account, run_id: str, name: str) -> list[tuple[int, float]]:
    points, cursor = [], None
    while True:
        query = {"limit": "500", **({"cursor": cursor} if cursor else {})}
        page = await _get(daemons, account, f"/api/v1/runs/{run_id}/metrics/{name}", **query)
        points += [(p["step"], p["value"]) for p in page["items"]]
        if not (cursor := page["next_cursor"]):
            return points


async def test_a_training_loop_loses_nothing_while_the_experiment_service_is_down(
    daemons, daemon_scopes, ensure_daemon_started, gateway_url, account, tmp_path
):
    script = await _script(gateway_url, account, tmp_path, TRAINING, account.project_id)
    try:
        async with asyncio.timeout(120):
            run_id = (await script.stdout.readline()).decode().strip()
            assert run_id, (await script.stderr.read()).decode()
            await asyncio.sleep(1.0)  # some batches stored first
            experiment = await ensure_daemon_started(daemon_scopes["experiment"])
            experiment.process.send_signal(signal.SIGINT)
            await asyncio.to_thread(experiment.process.wait, 20)
            assert experiment.process.returncode == 0
            await asyncio.sleep(3.0)  # down while the loop goes on logging
            await ensure_daemon_started(daemon_scopes["experiment"])
            out, err = await script.communicate()
    finally:
        if script.returncode is None:
            script.kill()
            await script.wait()

    assert script.returncode == 0, err.decode()
    summary = out.decode().split()
    assert "accepted=20000" in summary, out
    retries = int(next(f for f in summary if f.startswith("retries=")).split("=")[1])
    assert retries > 0, out  # the outage was met, and ridden out
    run = await _get(daemons, account, f"/api/v1/runs/{run_id}")
    assert (run["status"], run["params"]) == ("succeeded", {"lr": 0.1})
    loss = await _all_points(daemons, account, run_id, "loss")
    assert loss == [(step, 1.0 / (step + 1)) for step in range(10_000)]
    summaries = await _get(daemons, account, f"/api/v1/runs/{run_id}/metrics")
    assert {m["name"]: m["count"] for m in summaries["items"]} == {"loss": 10_000, "acc": 10_000}


@pytest.mark.parametrize(
    ("ending", "status"),
    [("pass", "succeeded"), ("raise SystemExit(0)", "succeeded"), ("1 / 0", "failed")],
)
async def test_a_run_left_open_is_flushed_and_finished_at_exit(
    daemons, gateway_url, account, tmp_path, ending, status
):
    source = f"""
    import sys, etp
    run = etp.start_run(project=sys.argv[1], experiment="e", name="left open",
                        flush_seconds=3600)
    print(run.id, flush=True)
    for step in range(250):
        run.log_metric("loss", step, step=step)
    {ending}
    """
    script = await _script(gateway_url, account, tmp_path, source, account.project_id)
    async with asyncio.timeout(60):
        out, err = await script.communicate()

    run_id = out.decode().split()[0]
    run = await _get(daemons, account, f"/api/v1/runs/{run_id}")
    assert run["status"] == status, err.decode()
    summaries = await _get(daemons, account, f"/api/v1/runs/{run_id}/metrics")
    assert [(m["name"], m["count"]) for m in summaries["items"]] == [("loss", 250)]


async def test_the_context_manager_logs_everything_and_fails_the_run_on_an_exception(
    daemons, gateway_url, account, tmp_path
):
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights" * 1000)

    def crash(started: etp.Run) -> None:
        with started as run:
            run.log_params({"lr": 2, "layers": 4})
            run.log_param("optimizer", "adam")
            run.log_metrics({"loss": 0.5, "acc": float("nan")}, step=3)
            assert run.log_artifact(model, type="model")["size"] == 7000
            raise RuntimeError("diverged")

    def train() -> str:
        started = etp.start_run(
            project="Wind tunnel",
            experiment="api",
            name="crash",
            params={"lr": 1},
            url=gateway_url,
            api_key=account.key,
        )
        with pytest.raises(RuntimeError, match="diverged"):  # the body's exception goes on
            crash(started)
        return started.id

    run_id = await asyncio.to_thread(train)

    run = await _get(daemons, account, f"/api/v1/runs/{run_id}")
    assert run["status"] == "failed"
    assert run["params"] == {"lr": 2, "layers": 4, "optimizer": "adam"}
    summaries = await _get(daemons, account, f"/api/v1/runs/{run_id}/metrics")
    assert {(m["name"], m["count"], m["finite_count"]) for m in summaries["items"]} == {
        ("loss", 1, 1),
        ("acc", 1, 0),
    }
    artifacts = await _get(daemons, account, f"/api/v1/runs/{run_id}/artifacts")
    assert [(a["name"], a["type"]) for a in artifacts["items"]] == [("model.pt", "model")]


async def test_start_run_continues_a_run_by_id(daemons, gateway_url, account):
    def log_twice() -> tuple[str, etp.ApiError]:
        first = etp.start_run(
            project=account.project_id,
            experiment="e",
            name="resumed",
            url=gateway_url,
            api_key=account.key,
        )
        first.log_metric("loss", 1.0)
        first.flush()
        again = etp.start_run(run_id=first.id, url=gateway_url, api_key=account.key)
        again.log_metric("loss", 2.0)  # no step: the next one
        again.finish()
        with pytest.raises(etp.ApiError) as caught:
            first.finish()  # finished by the other handle already
        return first.id, caught.value

    run_id, error = await asyncio.to_thread(log_twice)

    assert (error.status, error.exit_code) == (409, etp.ExitCode.CONFLICT)
    assert await _all_points(daemons, account, run_id, "loss") == [(0, 1.0), (1, 2.0)]
