"""`etp` as a subprocess against the real stack: what it prints (JSON alone on stdout with
`--json`), what it stores (checked through the API), and its exit codes."""

import stat
import uuid

import pytest

from tests.cli.conftest import expect

pytestmark = pytest.mark.e2e


async def test_login_checks_the_key_and_stores_it_for_the_next_commands(
    etp, account, gateway_url, tmp_path
):
    config = tmp_path / "etp-config.json"
    no_env = {"ETP_URL": "", "ETP_API_KEY": ""}

    logged_in = await etp(
        "login", "--url", gateway_url, "--api-key", account.key, "--json", env=no_env
    )

    assert logged_in.code == 0, logged_in
    assert logged_in.json["id"] == account.key_id
    assert logged_in.json["user_id"] == account.user_id
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert account.key in config.read_text()
    listed = await etp("projects", "list", "--json", env=no_env)
    assert listed.code == 0, listed
    assert [p["id"] for p in listed.json] == [account.project_id]


async def test_login_with_a_bad_key_stores_nothing(etp, gateway_url, tmp_path):
    refused = await etp(
        "login", "--url", gateway_url, "--api-key", f"etpk_{uuid.uuid4().hex}_{'x' * 43}", "--json"
    )

    assert refused.code == 4, refused
    assert refused.stdout == ""
    assert refused.error["status"] == 401
    assert not (tmp_path / "etp-config.json").exists()


async def test_projects_experiments_and_runs(etp, account, daemons):
    made = await etp(
        "experiments", "create", "wing-b", "-p", "Wind tunnel", "--tag", "aero", "--json"
    )
    assert made.code == 0, made
    experiment = made.json
    assert (experiment["project_id"], experiment["tags"]) == (account.project_id, ["aero"])

    run = await etp(
        "runs",
        "create",
        "baseline",
        "-e",
        experiment["id"],
        "--param",
        "lr=0.001",
        "--param",
        "optimizer=adam",
        "--json",
    )
    assert run.code == 0, run
    assert run.json["params"] == {"lr": 0.001, "optimizer": "adam"}
    assert run.json["status"] == "draft"

    listed = await etp("runs", "list", "-e", "wing-b", "-p", account.project_id, "--json")
    assert [r["id"] for r in listed.json] == [run.json["id"]]
    got = await etp("experiments", "get", "wing-b", "-p", "Wind tunnel", "--json")
    assert got.json["id"] == experiment["id"]
    projects = await etp("projects", "get", "Wind tunnel", "--json")
    assert projects.json["id"] == account.project_id
    stored = await expect(
        await daemons["gateway"].get(f"/api/v1/runs/{run.json['id']}", headers=account.headers),
        200,
    )
    assert stored["params"] == {"lr": 0.001, "optimizer": "adam"}


async def test_a_ci_job_starts_logs_and_finishes_a_run(etp, account, daemons):
    started = await etp(
        "run",
        "start",
        "-p",
        "Wind tunnel",
        "-e",
        "nightly",
        "-n",
        "build 42",
        "--param",
        "batch=64",
        "--json",
    )
    assert started.code == 0, started
    run_id = started.json["id"]
    assert started.json["status"] == "running"

    params = await etp(
        "log-params", run_id, "lr=3e-4", "--file", "-", "--json", input='{"lr": 1, "epochs": 3}'
    )
    assert params.json == {"batch": 64, "lr": 0.0003, "epochs": 3}  # arguments win
    logged = await etp("log-metrics", run_id, "loss=0.5", "acc=0.9", "--step", "1", "--json")
    assert logged.code == 0, logged
    assert (logged.json["accepted"], logged.json["batches"]) == (2, 1)
    finished = await etp("run", "finish", run_id, "--json")
    assert finished.code == 0, finished

    stored = await expect(
        await daemons["gateway"].get(f"/api/v1/runs/{run_id}", headers=account.headers), 200
    )
    assert stored["status"] == "succeeded"
    assert stored["params"] == {"batch": 64, "lr": 0.0003, "epochs": 3}
    metrics = await expect(
        await daemons["gateway"].get(f"/api/v1/runs/{run_id}/metrics", headers=account.headers),
        200,
    )
    assert {(m["name"], m["last"], m["last_step"]) for m in metrics["items"]} == {
        ("loss", 0.5, 1),
        ("acc", 0.9, 1),
    }
    again = await etp("run", "finish", run_id, "--json")
    assert again.code == 5, again  # succeeded → succeeded is not a transition
    assert again.error["status"] == 409


async def test_capture_start_and_stop(etp):
    run = (await etp("run", "start", "-p", "Wind tunnel", "-e", "e", "-n", "r", "--json")).json
    started = await etp("capture", "start", run["id"], "--notes", "take 1", "--json")
    assert started.code == 0, started
    assert started.json["status"] == "running"

    stopped = await etp("capture", "stop", run["id"], "--json")

    assert stopped.code == 0, stopped
    assert (stopped.json["id"], stopped.json["status"]) == (started.json["id"], "succeeded")
    none_left = await etp("capture", "stop", run["id"], "--json")
    assert none_left.code == 3, none_left


@pytest.mark.parametrize(
    ("args", "env", "code", "status"),
    [
        pytest.param(("runs", "get", str(uuid.uuid4())), {}, 3, 404, id="not_found"),
        pytest.param(
            ("projects", "list"),
            {"ETP_API_KEY": f"etpk_{uuid.uuid4().hex}_{'a' * 43}"},
            4,
            401,
            id="auth",
        ),
        pytest.param(
            ("experiments", "create", "x" * 300, "-p", "Wind tunnel"),
            {},
            1,
            422,
            id="refused_input",
        ),
        pytest.param(
            ("projects", "list"), {"ETP_URL": "http://127.0.0.1:9"}, 6, None, id="unavailable"
        ),
        pytest.param(("runs", "list"), {}, 2, None, id="usage"),
        pytest.param(("projects", "list"), {"ETP_API_KEY": ""}, 2, None, id="not_configured"),
    ],
)
async def test_exit_codes_and_errors(etp, args, env, code, status):
    result = await etp(*args, "--json", env=env)

    assert result.code == code, result
    assert result.stdout == ""
    error = result.error
    assert error["status"] == status
    assert error["detail"]
    if status is not None:
        assert len(error["request_id"]) >= 8

    human = await etp(*args, env=env)
    assert human.code == code, human
    assert error["detail"] in human.stderr
    if status is not None:
        assert "request_id: " in human.stderr


async def test_a_bad_option_is_a_usage_error(etp):
    result = await etp("runs", "list", "--no-such-option", "--json")

    assert result.code == 2, result
    assert result.stdout == ""


async def test_keys_create_list_and_revoke(etp, account, daemons, eventually_code):
    signed_in = ("--username", account.username, "--password-stdin", "--json")
    password = account.password + "\n"

    made = await etp("keys", "create", "nightly", "--role", "viewer", *signed_in, input=password)

    assert made.code == 0, made
    key = made.json
    assert key["key"].startswith("etpk_")
    assert (key["name"], key["role"]) == ("nightly", "viewer")
    listed = await etp("keys", "list", *signed_in, input=password)
    assert {k["id"] for k in listed.json} == {account.key_id, key["id"]}
    assert "key" not in listed.stdout.replace('"key_', "")  # never a secret in the list
    with_new_key = {"ETP_API_KEY": key["key"]}
    assert (await etp("projects", "list", "--json", env=with_new_key)).code == 0
    viewer_writes = await etp(
        "experiments", "create", "x", "-p", account.project_id, "--json", env=with_new_key
    )
    assert viewer_writes.code == 4, viewer_writes  # the key is capped at viewer
    assert viewer_writes.error["status"] == 403

    revoked = await etp("keys", "revoke", key["id"], *signed_in, input=password)

    assert revoked.code == 0, revoked
    assert revoked.json == {"id": key["id"], "revoked": True}
    # Services keep a key's grant a few seconds: the revoked key fails with 401 soon.
    await eventually_code(4, "projects", "list", "--json", env=with_new_key)
    left = await daemons["auth"].get("/api/v1/api-keys", headers=account.bearer)
    assert {k["id"] for k in left.json()["items"]} == {account.key_id}


async def test_keys_need_a_password_sign_in(etp, account):
    no_user = await etp("keys", "list", "--json")
    assert no_user.code == 2, no_user

    wrong = await etp(
        "keys", "list", "-u", account.username, "--password-stdin", "--json", input="wrong\n"
    )
    assert wrong.code == 4, wrong
    assert wrong.error["status"] == 401
