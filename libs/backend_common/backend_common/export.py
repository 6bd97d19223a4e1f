"""Streaming exports: rows go out as they are read, so memory does not grow with the result."""

import asyncio
import contextlib
import csv
import io
import math
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from typing import Any

import orjson
from aiohttp import web

from backend_common.export_budget import ExportRows, ExportTimedOut

CHUNK_BYTES = 64 * 1024


# A text cell starting with one of these is a formula to a spreadsheet; a leading ' keeps it text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


class _CsvEncoder:
    def __init__(self, columns: Sequence[str]) -> None:
        self._columns = columns
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")

    def header(self) -> bytes:
        return self._line(self._columns)

    def row(self, item: dict[str, Any]) -> bytes:
        return self._line([_csv_cell(item.get(column)) for column in self._columns])

    def _line(self, values: Sequence[Any]) -> bytes:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(values)
        return self._buffer.getvalue().encode()


def _number_cell(value: float) -> Any:
    # Named as in JSON answers; not text, so never taken for a formula.
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def csv_document(rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows (the header first) as one CSV document, cells written as the streamed exports write
    theirs, NaN and infinities as `NaN`, `Infinity`, `-Infinity`; for small tables built whole."""
    encoder = _CsvEncoder(())
    return b"".join(
        encoder._line([_number_cell(v) if isinstance(v, float) else _csv_cell(v) for v in row])
        for row in rows
    )


async def stream_export(
    request: web.Request,
    items: AsyncGenerator[Any, None],
    *,
    fmt: str,
    name: str,
    columns: Sequence[str],
    headers: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    """Writes `items` as CSV (a header row, then `columns`) or as one JSON array."""
    is_csv = fmt == "csv"
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8" if is_csv else "application/json",
            "Content-Disposition": f'attachment; filename="{name}.{fmt}"',
            "Cache-Control": "no-store",
            **(headers or {}),
        }
    )
    # aclosing: a client that goes away mid-stream still ends the generator's transaction.
    async with contextlib.aclosing(items):
        # The first row is read before the headers go out, so a refused request is still a
        # problem response (the role check runs when the iteration starts).
        item = await anext(items, None)
        await response.prepare(request)
        encoder = _CsvEncoder(columns)
        chunk = bytearray(encoder.header() if is_csv else b"[")
        count = 0
        while item is not None:
            data = item.model_dump(mode="json")
            if is_csv:
                chunk += encoder.row(data)
            else:
                chunk += (b",\n" if count else b"\n") + orjson.dumps(data)
            count += 1
            if len(chunk) >= CHUNK_BYTES:
                await response.write(bytes(chunk))
                chunk.clear()
            item = await anext(items, None)
    if not is_csv:
        chunk += b"\n]\n"
    await response.write(bytes(chunk))
    await response.write_eof()
    return response


async def stream_bounded_export(
    request: web.Request,
    export: contextlib.AbstractAsyncContextManager[ExportRows[Any]],
    *,
    max_seconds: float,
    fmt: str,
    name: str,
    columns: Sequence[str] | None = None,
) -> web.StreamResponse:
    """Opens `export` (the domain's: role checks, an export slot, a snapshot) and streams its
    rows with its row-cap headers, all within `max_seconds`. A client that stops reading holds
    the export's connection: past the limit the export ends (its transaction closed, connection
    and slot given back) and the client's connection is cut mid-body, never ended cleanly, so a
    partial export cannot be taken for the whole; `ExportTimedOut` if nothing was sent yet.
    Without `columns`, the export's own are written."""
    try:
        async with asyncio.timeout(max_seconds), export as opened:
            return await stream_export(
                request,
                opened.rows,
                fmt=fmt,
                name=name,
                columns=opened.columns if columns is None else columns,
                headers=opened.headers,
            )
    except TimeoutError:
        if request.writer.output_size and request.transport is not None:
            request.transport.abort()
        raise ExportTimedOut(
            f"The export ran past {max_seconds:g} s; narrow the selection."
        ) from None
