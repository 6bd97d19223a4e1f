"""The client's parts without a stack: the metric batcher (on httpx's mock transport), the
metric file formats, the streamed JSON array, server-sent events."""

import hashlib
import io
import json
import os
import threading

import httpx
import pytest

from etp.artifacts import download_artifact, upload_artifact
from etp.cli.metrics import InputFormat, read_points
from etp.client import Client
from etp.errors import ApiError, ChecksumMismatch, UsageError
from etp.export import iter_json_array
from etp.metrics import MetricBatcher, metric_point, metric_value
from etp.sse import parse_events


class FakeMetricsApi:
    """Stores batches once per batch_id like the service; `script` answers the first calls."""

    def __init__(self, *script: object) -> None:
        self.script = list(script)
        self.batches: dict[str, list[dict]] = {}
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        with self.lock:
            self.calls.append(body["batch_id"])
            step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            raise step
        if isinstance(step, int):
            return httpx.Response(step, json={"code": "x", "detail": "scripted"})
        duplicate = body["batch_id"] in self.batches
        self.batches.setdefault(body["batch_id"], body["metrics"])
        answer = {"accepted": len(body["metrics"]), "late": 0, "duplicate": duplicate}
        return httpx.Response(200 if duplicate else 201, json=answer)

    def points(self) -> list[dict]:
        return [p for batch in self.batches.values() for p in batch]


def _batcher(api: FakeMetricsApi, **options) -> MetricBatcher:
    client = Client(
        "http://etp.test", "k", transport=httpx.MockTransport(api), sleep=lambda s: None
    )
    return MetricBatcher(client, "run-1", sleep=lambda s: None, **options)


def test_points_are_sent_in_order_in_batches_of_at_most_max_points():
    api = FakeMetricsApi()
    batcher = _batcher(api, max_points=1000, flush_seconds=3600)

    for step in range(2500):
        batcher.add(metric_point("loss", step, step=step))
    batcher.close()

    assert [len(b) for b in api.batches.values()] == [1000, 1000, 500]
    assert [p["step"] for p in api.points()] == list(range(2500))
    assert batcher.stats.accepted == 2500


def test_a_batch_is_resent_with_its_id_through_503s_and_lost_connections():
    request = httpx.Request("POST", "http://etp.test")
    api = FakeMetricsApi(
        503,
        httpx.ConnectError("refused", request=request),
        502,
        httpx.ReadTimeout("slow", request=request),
        429,
    )
    batcher = _batcher(api, flush_seconds=3600)

    for step in range(10):
        batcher.add(metric_point("loss", step, step=step))
    batcher.flush()

    assert len(set(api.calls)) == 1  # one batch, sent until stored
    assert [p["step"] for p in api.points()] == list(range(10))
    assert batcher.stats.retries > 0


def test_a_stored_batch_whose_answer_was_lost_is_not_stored_twice():
    api = FakeMetricsApi()
    lost = []

    def losing(request: httpx.Request) -> httpx.Response:
        answer = api(request)
        if not lost:  # stored, but the answer never arrives
            lost.append(1)
            raise httpx.ReadError("reset", request=request)
        return answer

    client = Client(
        "http://etp.test", "k", transport=httpx.MockTransport(losing), sleep=lambda s: None
    )
    batcher = MetricBatcher(client, "run-1", flush_seconds=3600, sleep=lambda s: None)
    batcher.add(metric_point("loss", 1.0, step=0))
    batcher.close()

    assert len(api.calls) == 2
    assert len(api.points()) == 1
    assert (batcher.stats.accepted, batcher.stats.duplicates) == (1, 1)


def test_a_refused_batch_stops_the_batcher_with_the_api_error():
    api = FakeMetricsApi(422)
    batcher = _batcher(api, flush_seconds=3600)
    batcher.add(metric_point("loss", 1.0))

    with pytest.raises(ApiError) as caught:
        batcher.flush()
    assert caught.value.status == 422
    with pytest.raises(ApiError):
        batcher.add(metric_point("loss", 2.0))


def test_a_waiting_point_is_sent_after_flush_seconds():
    api = FakeMetricsApi()
    batcher = _batcher(api, flush_seconds=0.05)
    batcher.add(metric_point("loss", 1.0))

    sent = threading.Event()
    for _ in range(100):
        if api.batches:
            sent.set()
            break
        sent.wait(0.02)
    assert sent.is_set()
    batcher.close()


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        (1, 1),
        (0.5, 0.5),
        ("2.5", 2.5),
        (float("nan"), "NaN"),
        (float("-inf"), "-Infinity"),
        ("Infinity", "Infinity"),
    ],
)
def test_metric_values(value, sent):
    assert metric_value(value) == sent


@pytest.mark.parametrize("value", [True, None, "high", [1]])
def test_values_that_are_not_numbers_are_refused(value):
    with pytest.raises(UsageError):
        metric_value(value)


def test_csv_long_and_wide():
    long = "name,value,step,timestamp\nloss,0.5,1,\nacc,NaN,,2026-01-01T00:00:00Z\n"
    assert list(read_points(io.StringIO(long), InputFormat.auto)) == [
        {"name": "loss", "value": 0.5, "step": 1},
        {"name": "acc", "value": "NaN", "timestamp": "2026-01-01T00:00:00Z"},
    ]
    wide = "step,loss,acc\n0,1.5,\n1,1.25,0.5\n"
    assert list(read_points(io.StringIO(wide), InputFormat.csv)) == [
        {"name": "loss", "value": 1.5, "step": 0},
        {"name": "loss", "value": 1.25, "step": 1},
        {"name": "acc", "value": 0.5, "step": 1},
    ]


def test_json_lines_long_and_wide():
    text = '\n{"name": "loss", "value": 1}\n\n{"step": 4, "a": 1.5, "b": null}\n'
    assert list(read_points(io.StringIO(text), InputFormat.auto)) == [
        {"name": "loss", "value": 1},
        {"name": "a", "value": 1.5, "step": 4},
    ]
    with pytest.raises(UsageError, match="line 2"):
        list(read_points(io.StringIO('{"step": 1}\n[1]\n'), InputFormat.jsonl))
    with pytest.raises(UsageError, match="line 1: a step is an integer"):
        list(read_points(io.StringIO('{"step": 1.5, "a": 1}\n'), InputFormat.jsonl))


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_a_json_array_is_read_item_by_item_whatever_the_chunks(size):
    items = [{"i": i, "text": "é✓" * (i % 5), "nested": {"a": [i, None]}} for i in range(50)]
    body = ("[\n" + ",\n".join(json.dumps(x, ensure_ascii=False) for x in items) + "\n]\n").encode()
    chunks = [body[i : i + size] for i in range(0, len(body), size)]

    assert list(iter_json_array(chunks)) == items
    assert list(iter_json_array([b"[]"])) == []


def test_a_json_array_cut_off_is_an_error():
    with pytest.raises(ApiError, match="cut off"):
        list(iter_json_array([b'[\n{"a": 1},\n{"a": 2']))


def test_server_sent_events():
    lines = [
        "retry: 2000",
        "",
        ": keep-alive",
        "id: 7",
        "event: readings",
        'data: {"a":',
        "data: 1}",
        "",
        "event: end",
        'data: {"reason": "token_expired"}',
        "",
    ]
    events = list(parse_events(iter(lines)))

    assert [(e.event, e.id) for e in events] == [("readings", "7"), ("end", "7")]
    assert events[0].json() == {"a": 1}


class _BreaksOff(httpx.SyncByteStream):
    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self):
        yield self.data
        raise httpx.ReadError("connection reset")


def _artifact_api(content: bytes, *, break_after: int | None, stored_sha: str | None = None):
    sha = hashlib.sha256(content).hexdigest()
    ranges: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/content"):
            meta = {"id": "a1", "name": "runs/7/model.bin", "size": len(content)}
            return httpx.Response(200, json={**meta, "sha256": stored_sha or sha})
        ranges.append(request.headers.get("Range"))
        if request.headers.get("Range"):
            assert request.headers["If-Range"] == f'"{sha}"'
            start = int(request.headers["Range"].removeprefix("bytes=").rstrip("-"))
            return httpx.Response(206, content=content[start:])
        if break_after is not None:
            return httpx.Response(200, stream=_BreaksOff(content[:break_after]))
        return httpx.Response(200, content=content)

    return handler, ranges


def test_a_download_resumes_where_the_connection_broke(tmp_path):
    content = os.urandom(100_000)
    handler, ranges = _artifact_api(content, break_after=30_000)
    client = Client("http://etp.test", "k", transport=httpx.MockTransport(handler))

    _, target = download_artifact(client, "a1", tmp_path, sleep=lambda s: None)

    assert target == tmp_path / "model.bin"  # the last segment of the name
    assert target.read_bytes() == content
    assert ranges == [None, "bytes=30000-"]
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_a_download_that_does_not_match_its_sha256_leaves_nothing(tmp_path):
    handler, _ = _artifact_api(b"abc", break_after=None, stored_sha="0" * 64)
    client = Client("http://etp.test", "k", transport=httpx.MockTransport(handler))

    with pytest.raises(ChecksumMismatch):
        download_artifact(client, "a1", tmp_path / "out.bin")
    assert list(tmp_path.iterdir()) == []


def test_an_upload_is_refused_when_the_stored_sha256_differs(tmp_path):
    source = tmp_path / "f.txt"
    source.write_bytes(b"hello")
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers["Content-Length"], request.read()))
        return httpx.Response(201, json={"id": "a1", "sha256": "0" * 64, "size": 5})

    client = Client("http://etp.test", "k", transport=httpx.MockTransport(handler))
    with pytest.raises(ChecksumMismatch):
        upload_artifact(client, "r1", source)
    assert seen == [("5", b"hello")]


def test_an_upload_is_sent_again_from_the_start_after_a_503(tmp_path):
    source = tmp_path / "f.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024))
    bodies, keys = [], []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        keys.append(request.headers["Idempotency-Key"])
        if len(bodies) == 1:
            return httpx.Response(503, headers={"Retry-After": "0"})
        digest = hashlib.sha256(bodies[-1]).hexdigest()
        return httpx.Response(201, json={"id": "a1", "sha256": digest, "size": len(bodies[-1])})

    client = Client("http://etp.test", "k", transport=httpx.MockTransport(handler))
    stored = upload_artifact(client, "r1", source, name="weights")

    assert bodies == [source.read_bytes()] * 2
    assert keys[0] == keys[1]
    assert stored["id"] == "a1"
