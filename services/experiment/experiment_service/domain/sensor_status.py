"""Sensor status events and data gaps (the job `sensors.watch_status`, docs/jobs.md).

A sensor's reachability is `online` (its status online or delayed: heard from within
`offline_after`) or `offline`. The job compares it with the one last announced and, once per
change, sends `sensor.offline` or `sensor.online` (to the sensor's home project, `actor: null`).
The first reachability a sensor gets (first heard from, or on the job's first run after the
upgrade) is recorded without an event. Going offline opens a data gap, from the last heartbeat,
in each running capture session of the runs it is bound to; a session started while it is
offline gets one from its start; coming back closes them at the heartbeat that was heard.
"""

from collections.abc import Mapping
from datetime import datetime

from backend_common.db import Database
from experiment_service.domain.sensors import Liveness
from experiment_service.domain.webhooks import outbox
from experiment_service.repositories.sensor_status import Change, SensorStatusRepository
from experiment_service.repositories.sensors import SensorRepository, SensorView

_TAKE = 100
EVENTS = {"offline": "sensor.offline", "online": "sensor.online"}


class SensorWatch:
    def __init__(self, db: Database, liveness: Liveness) -> None:
        self._db = db
        self._liveness = liveness

    async def watch(self, now: datetime) -> Mapping[str, int]:
        counts = {"offline": 0, "online": 0, "gaps_opened": 0}
        while True:
            async with self._db.connection() as conn:
                changes = await SensorStatusRepository(conn).changed(
                    now=now, offline_after=self._liveness.offline_after, limit=_TAKE
                )
            for change in changes:
                if await self._announce(change, now, counts):
                    counts[change.after] += 1
            if len(changes) < _TAKE:
                break
        async with self._db.transaction() as conn:
            statuses = SensorStatusRepository(conn)
            for sensor_id, last_heartbeat in await statuses.offline():
                counts["gaps_opened"] += await statuses.open_gaps([sensor_id], since=last_heartbeat)
        return counts

    async def _announce(self, change: Change, now: datetime, counts: dict[str, int]) -> bool:
        async with self._db.transaction() as conn:
            statuses = SensorStatusRepository(conn)
            if not await statuses.announce(change, at=now):
                return False
            if change.after == "offline":
                counts["gaps_opened"] += await statuses.open_gaps(
                    [change.sensor_id], since=change.last_heartbeat
                )
            else:
                await statuses.close_gaps(change.sensor_id, at=change.last_heartbeat)
            if change.before is None:
                return False
            view = SensorView(
                now=now,
                online_within=self._liveness.online_within,
                offline_after=self._liveness.offline_after,
            )
            sensor = await SensorRepository(conn).get(change.sensor_id, view)
            if sensor is None:
                return False
            await outbox.emit(
                conn,
                event_type=EVENTS[change.after],
                project_id=sensor.project_id,
                entity=sensor,
                caller=None,
                role=None,
                occurred_at=now,
            )
        return True
