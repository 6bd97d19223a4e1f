"""The outbox's gauges (backlog, the delivery due longest) and the deliveries counted by outcome,
as a scrape of the experiment service shows them."""

from prometheus_client import REGISTRY

from backend_common.metrics import SAMPLERS, sample
from tests.experiment.factories import create_experiment, create_run
from tests.experiment.webhook_kit import subscribe
from tests.plugins.waiting import eventually


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_outbox_gauges_count_due_deliveries_of_active_subscriptions(
    make_hooks_client, pgsql, clock, editor, project_id, receiver
):
    hooks = await make_hooks_client(webhook_dispatcher_enabled=False)
    await subscribe(hooks, editor, project_id, receiver().url, ["run.created"])
    experiment = await create_experiment(hooks, editor, project_id)
    await create_run(hooks, editor, experiment["id"])
    await create_run(hooks, editor, experiment["id"])
    clock.advance(600)

    await sample(hooks.app[SAMPLERS], seconds_each=5)

    assert value("etp_outbox_backlog") == 2
    assert 590 <= value("etp_outbox_oldest_due_seconds") <= 660
    # A retry not yet due is backlog, not waiting; a disabled subscription's wait for it.
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = %s",
            (clock.now.replace(year=clock.now.year + 1),),
        )
    await sample(hooks.app[SAMPLERS], seconds_each=5)
    assert value("etp_outbox_backlog") == 2
    assert value("etp_outbox_oldest_due_seconds") == 0
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute("UPDATE webhook_subscriptions SET active = false")
    await sample(hooks.app[SAMPLERS], seconds_each=5)
    assert value("etp_outbox_backlog") == 0


async def test_deliveries_are_counted_by_outcome(hooks, editor, project_id, receiver):
    before = {
        outcome: value("etp_webhook_deliveries_total", outcome=outcome)
        for outcome in ("delivered", "dead", "failed")
    }
    await subscribe(hooks, editor, project_id, receiver().url, ["run.created"])
    await subscribe(hooks, editor, project_id, receiver([410]).url, ["run.created"])
    experiment = await create_experiment(hooks, editor, project_id)

    await create_run(hooks, editor, experiment["id"])

    async def counted() -> dict[str, float]:
        moved = {
            outcome: value("etp_webhook_deliveries_total", outcome=outcome) - before[outcome]
            for outcome in before
        }
        return moved if moved["delivered"] + moved["dead"] >= 2 else {}

    assert await eventually(counted) == {"delivered": 1, "dead": 1, "failed": 0}
