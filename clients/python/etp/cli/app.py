"""The `etp` command: one Typer app; each command group lives in its own module.

Exit codes (etp.errors.ExitCode): 0 ok, 1 other error, 2 usage, 3 not found, 4 auth (401/403),
5 conflict (409/412), 6 server error or unavailable (5xx, 429 after the retries, no connection);
130 after Ctrl-C."""

import sys
from importlib import metadata
from typing import Annotated

import typer

from etp.cli import (
    account,
    artifacts,
    capture,
    demo,
    export,
    imports,
    metrics,
    resources,
    simulate,
    watch,
)
from etp.cli.common import STATE, report
from etp.errors import EtpError, ExitCode

app = typer.Typer(
    name="etp",
    no_args_is_help=True,
    help="ETP from the command line: projects, runs, metrics, artifacts, telemetry.",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"etp {metadata.version('etp-client')}")
        raise typer.Exit()


@app.callback()
def root(
    url: Annotated[
        str | None, typer.Option("--url", help="The gateway's URL (default: ETP_URL, etp login).")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="An API key (default: ETP_API_KEY, etp login).")
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress or notes on stderr.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """ETP from the command line: projects, runs, metrics, artifacts, telemetry."""
    STATE.url, STATE.api_key, STATE.quiet = url, api_key, quiet


app.command("login")(account.login)
app.add_typer(account.keys)
app.add_typer(resources.projects)
app.add_typer(resources.experiments)
app.add_typer(resources.runs)
app.add_typer(resources.run)
app.command("log-params")(resources.log_params)
app.command("log-metrics")(metrics.log_metrics)
app.add_typer(artifacts.artifact)
app.add_typer(capture.capture)
app.add_typer(export.export)
app.add_typer(imports.imports)
app.command("watch")(watch.watch)
app.command("simulate")(simulate.simulate)
app.command("demo")(demo.demo)


def main(argv: list[str] | None = None) -> None:
    """Runs the command and exits with its code; errors are reported on stderr."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="etp", standalone_mode=False)
    except typer.Exit as done:
        code = done.exit_code
    except typer.TyperException as exc:  # usage errors (exit 2) and the like
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            STATE.err.print(f"error: {exc.format_message()}", markup=False)
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        STATE.err.print("interrupted")
        code = 130
    except EtpError as exc:
        report(exc)
        code = exc.exit_code
    except BrokenPipeError:  # stdout closed early (e.g. `| head`)
        code = ExitCode.OK
    except Exception as exc:
        report(exc)
        code = ExitCode.OTHER
    sys.exit(int(code) if isinstance(code, int) else ExitCode.OK)
