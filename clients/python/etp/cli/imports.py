"""`etp import mlflow`: an MLflow tracking server or `mlruns` folder copied into a project
(etp.mlflow_import), resumable and idempotent, with a progress bar on stderr."""

from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from etp.cli.common import STATE, JsonOption, client, details, emit
from etp.metrics import MAX_POINTS
from etp.mlflow_import.importer import MlflowImport, Reporter
from etp.mlflow_import.source import MlflowSource

imports = typer.Typer(name="import", help="Copy another tracker's history into ETP.")


class _Bar(Reporter):
    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task = progress.add_task("reading MLflow", total=None, points=0, artifacts=0)
        self._points = self._artifacts = 0

    def start(self, runs: int) -> None:
        self._progress.update(self._task, total=runs, description="runs")

    def run(self, experiment: str, name: str) -> None:
        self._progress.update(self._task, description=f"{experiment} / {name}"[:60])

    def copied(self, points: int = 0, artifacts: int = 0) -> None:
        self._points += points
        self._artifacts += artifacts
        self._progress.update(self._task, points=self._points, artifacts=self._artifacts)

    def done(self) -> None:
        self._progress.advance(self._task)


@imports.command("mlflow")
def mlflow(
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="An MLflow tracking URI (http://host:5000, file:///…) or an mlruns folder.",
        ),
    ],
    project: Annotated[str, typer.Option("--project", "-p", help="A project id or name.")],
    experiment: Annotated[
        list[str] | None,
        typer.Option("--experiment", "-e", help="Only this MLflow experiment (repeatable)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be copied; write nothing.")
    ] = False,
    batch_points: Annotated[
        int,
        typer.Option("--batch-points", min=1, max=MAX_POINTS, help="Metric points a request."),
    ] = MAX_POINTS,
    json_output: JsonOption = False,
) -> None:
    r"""Copy MLflow experiments, runs, params, tags, metric histories and artifacts into a
    project. Run it again to copy what is new, or to finish an interrupted import: nothing is
    copied twice. Needs the mlflow extra: pip install 'etp-client\[mlflow]'."""
    reader = MlflowSource(source)
    api = client()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[points]:,} points, {task.fields[artifacts]:,} artifacts"),
        TimeElapsedColumn(),
        console=STATE.err,
        transient=True,
        disable=STATE.quiet,
    )
    with progress:
        work = MlflowImport(
            api,
            reader,
            project,
            experiments=experiment or None,
            dry_run=dry_run,
            batch_points=batch_points,
            reporter=_Bar(progress),
        )
        summary = work.run()
    result = summary.as_dict()
    shown = {k: v for k, v in result.items() if k != "failures"}
    emit(result, details(shown))
    for failure in summary.failures:
        error = failure["error"]
        STATE.err.print(
            f"run {failure['run_id']} ({failure['experiment']}): {error['detail']} "
            f"({error['status']} {error['code']})",
            markup=False,
            highlight=False,
        )
    if summary.failures:
        raise typer.Exit(1)
