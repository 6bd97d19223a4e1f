"""`etp artifact upload/download/list`: streamed, with a progress bar on stderr, checked by
SHA-256 (etp.artifacts)."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from etp.artifacts import download_artifact, upload_artifact
from etp.cli.common import JsonOption, client, details, emit, table, transfer
from etp.errors import UsageError

artifact = typer.Typer(name="artifact", help="Files kept with a run.", no_args_is_help=True)


@artifact.command("upload")
def upload(
    run_id: str,
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    name: Annotated[str | None, typer.Option("--name", help="Default: the file's name.")] = None,
    kind: Annotated[str, typer.Option("--type", help="model, dataset, plot, log, ...")] = "file",
    metadata: Annotated[str | None, typer.Option("--metadata", help="A JSON object.")] = None,
    content_type: Annotated[str | None, typer.Option("--content-type")] = None,
    json_output: JsonOption = False,
) -> None:
    """Upload a file into a run; its SHA-256 is checked against the stored artifact's."""
    meta: dict[str, Any] | None = None
    if metadata is not None:
        try:
            meta = json.loads(metadata)
        except ValueError as exc:
            raise UsageError(f"--metadata is not JSON: {exc}") from None
        if not isinstance(meta, dict):
            raise UsageError("--metadata is a JSON object")
    api = client()
    with transfer(f"uploading {path.name}", path.stat().st_size) as shown:
        stored = upload_artifact(
            api,
            run_id,
            path,
            name=name,
            type=kind,
            metadata=meta,
            content_type=content_type,
            progress=shown,
        )
    emit(stored, details(stored))


@artifact.command("download")
def download(
    artifact_id: str,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="A file or a folder; default: here, by its name."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Download an artifact; it is written into place only once its SHA-256 matches."""
    api = client()
    with transfer("downloading", None) as shown:
        stored, target = download_artifact(api, artifact_id, output, progress=shown)
    result = {**stored, "path": str(target.resolve())}
    emit(result, f"{target} ({stored['size']:,} bytes, sha256 {stored['sha256']})")


@artifact.command("list")
def list_artifacts(
    run_id: str,
    kind: Annotated[str | None, typer.Option("--type")] = None,
    json_output: JsonOption = False,
) -> None:
    """A run's artifacts."""
    items = list(client().paginate(f"/api/v1/runs/{run_id}/artifacts", {"type": kind}))
    emit(items, table(items, ["id", "name", "type", "size", "sha256", "created_at"]))
