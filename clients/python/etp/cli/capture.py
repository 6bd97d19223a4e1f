"""`etp capture start/stop`: capture sessions of a running run."""

from typing import Annotated

import typer

from etp.cli.common import JsonOption, client, details, emit
from etp.errors import EtpError, ExitCode, UsageError

capture = typer.Typer(
    name="capture", help="Capture sessions inside a running run.", no_args_is_help=True
)


@capture.command("start")
def start(
    run_id: str,
    notes: Annotated[str | None, typer.Option("--notes")] = None,
    json_output: JsonOption = False,
) -> None:
    """Start a capture session in a running run."""
    body = {"notes": notes} if notes is not None else {}
    session = client().post(f"/api/v1/runs/{run_id}/capture-sessions", body)
    emit(session, details(session))


@capture.command("stop")
def stop(
    run_id: str,
    session_id: Annotated[
        str | None, typer.Argument(help="Default: the run's running session.")
    ] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Stop it as failed.")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why it failed.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Stop a capture session (its data is kept)."""
    if reason is not None and not failed:
        raise UsageError("--reason goes with --failed")
    api = client()
    if session_id is None:
        sessions = api.paginate(f"/api/v1/runs/{run_id}/capture-sessions")
        running = [s for s in sessions if s["status"] == "running"]
        if not running:
            raise EtpError(
                "the run has no running capture session",
                code="capture_not_running",
                exit_code=ExitCode.NOT_FOUND,
            )
        session_id = running[0]["id"]
    body: dict[str, str] = {"status": "failed" if failed else "succeeded"}
    if reason is not None:
        body["reason"] = reason
    session = api.post(f"/api/v1/runs/{run_id}/capture-sessions/{session_id}/stop", body)
    emit(session, details(session))
