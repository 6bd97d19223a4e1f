"""Exports of telemetry and runs: the service streams CSV or a JSON array; Parquet is written
here from the JSON, row group by row group, with pyarrow (the `parquet` extra)."""

import codecs
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from etp.errors import ApiError, UsageError

# Column types of the rows the service exports (StoredReading, Run); other columns are text.
TIMESTAMP = "timestamp"
FLOAT = "float"
BOOL = "bool"
TEXT = "text"
JSON_TEXT = "json"
TEXT_LIST = "text_list"

SCHEMAS: dict[str, dict[str, str]] = {
    "telemetry": {
        "timestamp": TIMESTAMP,
        "received_at": TIMESTAMP,
        "sensor_id": TEXT,
        "raw_value": FLOAT,
        "physical_value": FLOAT,
        "signal": TEXT,
        "conversion_status": TEXT,
        "late": BOOL,
        "run_id": TEXT,
        "capture_session_id": TEXT,
        "meta": JSON_TEXT,
    },
    "runs": {
        "id": TEXT,
        "experiment_id": TEXT,
        "project_id": TEXT,
        "name": TEXT,
        "params": JSON_TEXT,
        "git_sha": TEXT,
        "env": JSON_TEXT,
        "tags": TEXT_LIST,
        "notes": TEXT,
        "metadata": JSON_TEXT,
        "status": TEXT,
        "started_at": TIMESTAMP,
        "finished_at": TIMESTAMP,
        "duration_seconds": FLOAT,
        "created_by": TEXT,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    },
}


def iter_json_array(chunks: Iterable[bytes]) -> Iterator[Any]:
    """The items of one JSON array read from byte chunks, one at a time (memory holds one chunk
    and one item, whatever the array's length). A body that ends before `]` is an error: the
    service cuts an export that ran too long that way."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")()  # a character may be split between chunks
    text = ""
    started = ended = False
    for chunk in chunks:
        text += utf8.decode(chunk)
        position = 0
        while True:
            while position < len(text) and text[position] in " \t\r\n,":
                position += 1
            if position == len(text):
                break
            if not started:
                if text[position] != "[":
                    raise ApiError(200, "invalid_export", "the export is not a JSON array")
                started = True
                position += 1
                continue
            if text[position] == "]":
                ended = True
                position += 1
                break
            try:
                item, position = decoder.raw_decode(text, position)
            except json.JSONDecodeError:
                break  # the item goes on in the next chunk
            yield item
        text = text[position:]
    if not ended or text.strip():
        raise ApiError(None, "export_cut", "the export ended before its last row (cut off)")


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)  # "NaN", "Infinity" included


_CONVERT: dict[str, Callable[[Any], Any]] = {
    TIMESTAMP: _timestamp,
    FLOAT: _float,
    BOOL: lambda v: None if v is None else bool(v),
    TEXT: _text,
    JSON_TEXT: lambda v: None if v is None else json.dumps(v, ensure_ascii=False),
    TEXT_LIST: lambda v: None if v is None else [str(x) for x in v],
}


def write_parquet(
    rows: Iterable[dict[str, Any]],
    path: Path,
    kind: str,
    *,
    group_rows: int = 50_000,
    on_rows: Callable[[int], None] | None = None,
) -> int:
    """Writes `rows` (of `kind`: telemetry or runs) to a Parquet file; the number of rows. The
    columns are the known ones present in the first row, in schema order, then any others."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(
            "Parquet needs pyarrow: pip install 'etp-client[parquet]' (or --format csv|json)"
        ) from None
    known = SCHEMAS[kind]
    arrow = {
        TIMESTAMP: pa.timestamp("us", tz="UTC"),
        FLOAT: pa.float64(),
        BOOL: pa.bool_(),
        TEXT: pa.string(),
        JSON_TEXT: pa.string(),
        TEXT_LIST: pa.list_(pa.string()),
    }
    columns: list[tuple[str, str]] = []
    writer: Any = None
    count = 0
    group: list[dict[str, Any]] = []

    def write(batch: list[dict[str, Any]]) -> None:
        nonlocal writer
        if writer is None:
            first = batch[0]
            columns.extend((name, kind_) for name, kind_ in known.items() if name in first)
            columns.extend((name, TEXT) for name in first if name not in known)
            schema = pa.schema([(name, arrow[kind_]) for name, kind_ in columns])
            writer = pq.ParquetWriter(str(path), schema, compression="zstd")
        arrays = [
            pa.array([_CONVERT[kind_](row.get(name)) for row in batch], type=arrow[kind_])
            for name, kind_ in columns
        ]
        writer.write_table(pa.Table.from_arrays(arrays, schema=writer.schema))

    try:
        for row in rows:
            group.append(row)
            if len(group) >= group_rows:
                write(group)
                count += len(group)
                group = []
                if on_rows:
                    on_rows(count)
        if group:
            write(group)
            count += len(group)
        if writer is None:  # no rows: an empty file with the known columns
            schema = pa.schema([(name, arrow[kind_]) for name, kind_ in known.items()])
            writer = pq.ParquetWriter(str(path), schema, compression="zstd")
    finally:
        if writer is not None:
            writer.close()
    if on_rows:
        on_rows(count)
    return count
