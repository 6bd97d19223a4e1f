"""The SSRF guard at save time: IPv6 forms that lead to an IPv4 address are judged by that
address, site-local IPv6 is refused, and so is a URL that clients would read in different ways
(CR/LF, backslashes, other control characters)."""

import pytest

from tests.experiment.webhook_kit import HOOKS, count_rows, hook_url, subscribe
from tests.problems import assert_problem


async def _create(client, editor, project_id, url):
    return await client.post(
        HOOKS,
        json={"project_id": str(project_id), "target_url": url, "event_types": ["*"]},
        headers=editor.headers,
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        # 6to4 (2002::/16) carries an IPv4 address in its bits 16..48.
        ("http://[2002:7f00:1::]/", "loopback"),
        ("http://[2002:a00:1::1]:8080/", "private"),
        ("http://[2002:c0a8:10a::]/", "private"),
        ("http://[2002:a9fe:a9fe::]/latest/meta-data/", "metadata"),
        # NAT64 (64:ff9b::/96) and IPv4-mapped (::ffff:0:0/96) in their last 32 bits.
        ("http://[64:ff9b::7f00:1]/", "loopback"),
        ("http://[64:ff9b::a9fe:a9fe]/", "metadata"),
        ("http://[64:ff9b::10.0.0.1]/", "private"),
        ("http://[::ffff:a00:1]/", "private"),
        ("http://[::ffff:169.254.169.254]/", "metadata"),
        # Site-local, deprecated but still routed inside sites.
        ("http://[fec0::1]/", "site-local"),
        ("http://[feff:ffff::1]/", "site-local"),
        # Read differently by different clients: request splitting, `\` as `/` or as user info.
        ("http://93.184.215.14/hook\r\nX-Injected: 1", "control character or a backslash"),
        ("http://93.184.215.14/\nhook", "control character or a backslash"),
        ("http://127.0.0.1\\@93.184.215.14/", "control character or a backslash"),
        ("http://93.184.215.14\\hook", "control character or a backslash"),
        ("http://93.184.215.14/ho\tok", "control character or a backslash"),
        ("http://93.184.215.14/h\x7fok", "control character or a backslash"),
    ],
)
async def test_target_hidden_behind_another_form_is_refused(
    make_hooks_client, pgsql, editor, project_id, url, why
):
    client = await make_hooks_client(webhook_allowed_hosts=())

    response = await _create(client, editor, project_id, url)

    problem = await assert_problem(response, 422, "webhook_target_refused")
    (error,) = problem["errors"]
    assert error["field"] == "target_url"
    assert why in error["message"], error
    assert count_rows(pgsql, "webhook_subscriptions") == 0


async def test_changing_the_target_to_a_6to4_loopback_is_refused(
    make_hooks_client, pgsql, editor, project_id, receiver
):
    client = await make_hooks_client()
    created = await subscribe(client, editor, project_id, receiver().url)

    response = await client.patch(
        hook_url(created["id"]),
        json={"target_url": "http://[2002:7f00:1::]:8002/api/v1/runs"},
        headers=editor.headers,
    )

    await assert_problem(response, 422, "webhook_target_refused")
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("SELECT target_url FROM webhook_subscriptions")
        assert cursor.fetchall() == [(created["target_url"],)]


@pytest.mark.parametrize(
    "url",
    ["http://[2002:5db8:d70e::1]/hook", "http://[64:ff9b::5db8:d70e]/hook"],
)
async def test_6to4_and_nat64_of_a_public_address_are_judged_by_it(
    make_hooks_client, editor, project_id, url
):
    """Unwrapped, not refused wholesale: 93.184.215.14 is public."""
    client = await make_hooks_client(webhook_allowed_hosts=())

    created = await subscribe(client, editor, project_id, url)

    assert created["target_url"] == url
