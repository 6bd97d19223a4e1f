"""`etp projects|experiments|runs list/create/get`, `etp run start/finish`, `etp log-params`."""

from typing import Annotated, Any

import typer

from etp.cli.common import JsonOption, client, details, emit, key_values, note, table
from etp.errors import UsageError
from etp.resolve import find_experiment, find_project, is_uuid

projects = typer.Typer(name="projects", help="Projects you are a member of.", no_args_is_help=True)
experiments = typer.Typer(
    name="experiments", help="Experiments of a project.", no_args_is_help=True
)
runs = typer.Typer(name="runs", help="Runs of an experiment or a project.", no_args_is_help=True)
run = typer.Typer(name="run", help="Start and finish a run (for CI jobs).", no_args_is_help=True)

LimitOption = Annotated[int, typer.Option("--limit", min=1, help="At most this many.")]
AllOption = Annotated[bool, typer.Option("--all", help="Every item, page after page.")]
ProjectOption = Annotated[str, typer.Option("--project", "-p", help="Project id or name.")]
TagOption = Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeat for several).")]
ParamOption = Annotated[
    list[str] | None, typer.Option("--param", help="key=value (repeat); JSON values are typed.")
]

PROJECT_COLUMNS = ["id", "name", "role", "description"]
EXPERIMENT_COLUMNS = ["id", "name", "status", "tags", "created_at"]
RUN_COLUMNS = ["id", "name", "status", "params", "started_at", "duration_seconds"]


def _listed(path: str, params: dict[str, Any], limit: int, every: bool) -> list[dict[str, Any]]:
    return list(client().paginate(path, params, limit=None if every else limit))


# -- projects ------------------------------------------------------------------------------


@projects.command("list")
def projects_list(
    query: Annotated[str | None, typer.Option("--query", "-q", help="Name contains.")] = None,
    limit: LimitOption = 50,
    every: AllOption = False,
    json_output: JsonOption = False,
) -> None:
    """Your projects."""
    items = _listed("/api/v1/projects", {"q": query}, limit, every)
    emit(items, table(items, PROJECT_COLUMNS))


@projects.command("create")
def projects_create(
    name: str,
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    json_output: JsonOption = False,
) -> None:
    """Create a project (you become its owner)."""
    body: dict[str, Any] = {"name": name}
    if description is not None:
        body["description"] = description
    created = client().post("/api/v1/projects", body)
    emit(created, details(created))


@projects.command("get")
def projects_get(project: str, json_output: JsonOption = False) -> None:
    """A project by id or name."""
    found = find_project(client(), project)
    emit(found, details(found))


# -- experiments ---------------------------------------------------------------------------


@experiments.command("list")
def experiments_list(
    project: ProjectOption,
    query: Annotated[str | None, typer.Option("--query", "-q")] = None,
    status: Annotated[list[str] | None, typer.Option("--status")] = None,
    limit: LimitOption = 50,
    every: AllOption = False,
    json_output: JsonOption = False,
) -> None:
    """A project's experiments."""
    api = client()
    project_id = project if is_uuid(project) else find_project(api, project)["id"]
    params = {"project_id": project_id, "q": query, "status": status or None}
    items = list(api.paginate("/api/v1/experiments", params, limit=None if every else limit))
    emit(items, table(items, EXPERIMENT_COLUMNS))


@experiments.command("create")
def experiments_create(
    name: str,
    project: ProjectOption,
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    tag: TagOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create an experiment in a project."""
    api = client()
    project_id = project if is_uuid(project) else find_project(api, project)["id"]
    body: dict[str, Any] = {"project_id": project_id, "name": name}
    if description is not None:
        body["description"] = description
    if tag:
        body["tags"] = tag
    created = api.post("/api/v1/experiments", body)
    emit(created, details(created))


@experiments.command("get")
def experiments_get(
    experiment: str,
    project: Annotated[str | None, typer.Option("--project", "-p")] = None,
    json_output: JsonOption = False,
) -> None:
    """An experiment by id (or by name with --project)."""
    found = find_experiment(client(), experiment, project=project)
    emit(found, details(found))


# -- runs ----------------------------------------------------------------------------------


@runs.command("list")
def runs_list(
    project: Annotated[str | None, typer.Option("--project", "-p")] = None,
    experiment: Annotated[str | None, typer.Option("--experiment", "-e")] = None,
    status: Annotated[list[str] | None, typer.Option("--status")] = None,
    limit: LimitOption = 50,
    every: AllOption = False,
    json_output: JsonOption = False,
) -> None:
    """Runs of an experiment (id, or name with --project) or of a project."""
    if project is None and experiment is None:
        raise UsageError("give --project, --experiment or both")
    api = client()
    params: dict[str, Any] = {"status": status or None}
    if experiment is not None:
        params["experiment_id"] = find_experiment(api, experiment, project=project)["id"]
    elif project is not None:
        params["project_id"] = project if is_uuid(project) else find_project(api, project)["id"]
    items = list(api.paginate("/api/v1/runs", params, limit=None if every else limit))
    emit(items, table(items, RUN_COLUMNS))


def _create_run(
    experiment: str,
    project: str | None,
    name: str,
    params: list[str] | None,
    tags: list[str] | None,
    notes: str | None,
    git_sha: str | None,
    create_experiment: bool,
) -> dict[str, Any]:
    api = client()
    found = find_experiment(api, experiment, project=project, create=create_experiment)
    body: dict[str, Any] = {"name": name, "params": key_values(params or [], "params")}
    for key, value in (("tags", tags), ("notes", notes), ("git_sha", git_sha)):
        if value:
            body[key] = value
    created: dict[str, Any] = api.post(f"/api/v1/experiments/{found['id']}/runs", body)
    return created


@runs.command("create")
def runs_create(
    name: str,
    experiment: Annotated[str, typer.Option("--experiment", "-e", help="Id, or name.")],
    project: Annotated[str | None, typer.Option("--project", "-p")] = None,
    param: ParamOption = None,
    tag: TagOption = None,
    notes: Annotated[str | None, typer.Option("--notes")] = None,
    git_sha: Annotated[str | None, typer.Option("--git-sha")] = None,
    json_output: JsonOption = False,
) -> None:
    """Create a run (a draft) in an experiment."""
    created = _create_run(experiment, project, name, param, tag, notes, git_sha, False)
    emit(created, details(created))


@runs.command("get")
def runs_get(run_id: str, json_output: JsonOption = False) -> None:
    """A run by id."""
    found = client().get(f"/api/v1/runs/{run_id}")
    emit(found, details(found))


# -- run start/finish, log-params ----------------------------------------------------------


@run.command("start")
def run_start(
    run_id: Annotated[str | None, typer.Argument(help="A draft run; else one is created.")] = None,
    experiment: Annotated[str | None, typer.Option("--experiment", "-e")] = None,
    project: Annotated[str | None, typer.Option("--project", "-p")] = None,
    name: Annotated[str | None, typer.Option("--name", "-n")] = None,
    param: ParamOption = None,
    tag: TagOption = None,
    notes: Annotated[str | None, typer.Option("--notes")] = None,
    git_sha: Annotated[str | None, typer.Option("--git-sha")] = None,
    json_output: JsonOption = False,
) -> None:
    """Move a draft run to `running`; or create a run (--experiment, --name) and start it. An
    experiment given by name in --project is created if missing."""
    if run_id is None:
        if experiment is None or name is None:
            raise UsageError("give a RUN_ID, or --experiment and --name to create one")
        run_id = _create_run(experiment, project, name, param, tag, notes, git_sha, True)["id"]
    elif experiment or name or param or tag or notes or git_sha:
        raise UsageError("with a RUN_ID, the options that create a run do not apply")
    started = client().patch(f"/api/v1/runs/{run_id}", {"status": "running"})
    note(f"run {started['id']} is running")
    emit(started, started["id"])


@run.command("finish")
def run_finish(
    run_id: str,
    failed: Annotated[bool, typer.Option("--failed", help="Finish as failed.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Finish a running run as `succeeded` (or `failed`)."""
    status = "failed" if failed else "succeeded"
    finished = client().patch(f"/api/v1/runs/{run_id}", {"status": status})
    note(f"run {finished['id']} {status} after {finished.get('duration_seconds')} s")
    emit(finished, finished["id"])


def log_params(
    run_id: str,
    params: Annotated[list[str] | None, typer.Argument(help="key=value ...")] = None,
    file: Annotated[
        typer.FileText | None,
        typer.Option("--file", "-f", help="A JSON object of params ('-' for stdin)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Merge params into a run (a key given again replaces the old value)."""
    import json

    given = key_values(params or [], "params")
    if file is not None:
        loaded = json.load(file)
        if not isinstance(loaded, dict):
            raise UsageError("--file holds one JSON object")
        given = {**loaded, **given}
    if not given:
        raise UsageError("no params given")
    updated = client().post(f"/api/v1/runs/{run_id}/params", {"params": given})
    emit(updated["params"], details(updated["params"]))
