"""Test pings are rate-limited per subscription: an editor cannot turn `ping` into a flood of
someone's receiver (each ping is a signed POST from our servers)."""

from tests.experiment.factories import expect
from tests.experiment.webhook_kit import count_rows, hook_url, subscribe
from tests.problems import assert_problem


async def test_pings_past_the_burst_are_429_and_queue_nothing(
    make_hooks_client, pgsql, editor, project_id, receiver
):
    client = await make_hooks_client(webhook_ping_burst=2, webhook_ping_rate=0.001)
    hook, other_hook = receiver(), receiver()
    flooded = await subscribe(client, editor, project_id, hook.url)
    other = await subscribe(client, editor, project_id, other_hook.url)

    def ping(webhook):
        return client.post(f"{hook_url(webhook['id'])}/ping", headers=editor.headers)

    for _ in range(2):
        await expect(await ping(flooded), 202)
    refused = await ping(flooded)

    await assert_problem(refused, 429, "too_many_requests")
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Limit"] == "2"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert count_rows(pgsql, "webhook_deliveries") == 2
    await expect(await ping(other), 202)
    await hook.wait_for(2)
    await other_hook.wait_for(1)
    await hook.stays_at(2, wait=0.2)
