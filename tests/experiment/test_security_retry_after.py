"""A receiver's Retry-After is the receiver's to write: whatever it holds, the attempt is
recorded, the next try comes within the backoff cap and the delivery dies after the last try
(instead of an exception while recording, and the same delivery sent every lease for ever)."""

from datetime import timedelta

import pytest

from tests.experiment.factories import expect
from tests.experiment.webhook_kit import deliveries, delivery_rows, hook_url, subscribe
from tests.plugins.waiting import eventually

CAP = 30.0
MAX_ATTEMPTS = 3


@pytest.mark.parametrize(
    "value",
    [
        "99999999999999",  # overflows timedelta
        "9" * 5000,  # more digits than int() reads
        "²",  # a digit to str.isdigit, not to int()
        "٣٦٠٠",  # Arabic-Indic digits: the same
        "Fri, 31 Dec 9999 23:59:59 GMT",  # a date far in the future
        "Sat, 01 Jan 99999 00:00:00 GMT",  # beyond datetime
        "-60",
        "Thu, 01 Jan 1970 00:00:00 GMT",  # in the past
        "3600",  # a plain one, longer than the cap
    ],
    ids=[
        "14-digits",
        "5000-digits",
        "superscript-two",
        "arabic-indic",
        "year-9999",
        "year-99999",
        "negative",
        "past",
        "over-the-cap",
    ],
)
async def test_odd_retry_after_is_recorded_clamped_and_the_delivery_dies(
    make_hooks_client, pgsql, mockserver, clock, editor, viewer, project_id, receiver, value
):
    client = await make_hooks_client(
        webhook_max_attempts=MAX_ATTEMPTS, webhook_backoff_base=1.0, webhook_backoff_cap=CAP
    )

    async def busy(call):
        return mockserver.make_response("busy", status=503, headers={"Retry-After": value})

    hook = receiver(answers=[busy])
    sub = await subscribe(client, editor, project_id, hook.url)
    await expect(await client.post(f"{hook_url(sub['id'])}/ping", headers=editor.headers), 202)

    for attempt in range(1, MAX_ATTEMPTS + 1):
        await hook.wait_for(attempt)
        (row,) = await eventually(
            lambda attempt=attempt: delivery_rows(
                pgsql, "d.attempts = %s AND d.status <> 'delivering'", (attempt,)
            ),
            what=f"attempt {attempt} recorded",
        )
        assert row["last_status"] == 503
        if attempt < MAX_ATTEMPTS:
            assert row["status"] == "failed"
            wait = row["next_attempt_at"] - row["last_attempt_at"]
            assert timedelta(0) < wait <= timedelta(seconds=CAP), wait
            clock.advance(wait.total_seconds())
        else:
            assert row["status"] == "dead"
            assert row["next_attempt_at"] is None

    clock.advance(10**6)
    await hook.stays_at(MAX_ATTEMPTS, wait=0.3)
    (delivery,) = await deliveries(client, viewer, sub["id"])
    assert delivery["status"] == "dead"
    assert [a["attempt"] for a in delivery["attempt_log"]] == [1, 2, 3]
    assert [a["status_code"] for a in delivery["attempt_log"]] == [503] * 3
