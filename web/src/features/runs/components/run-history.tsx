import { Empty, Loading } from "../../../components/ui";
import { formatDateTime, relativeTime } from "../../../lib/format";
import { useCaptureSessions, useRunEvents, useRunSensors } from "../api";
import { describeEvent } from "../events";

/** The run's audit trail, newest first: status changes, edits, capture, sensors bound. */
export function RunHistory({ runId, userName }: { runId: string; userName: (userId: string | null) => string }) {
  const events = useRunEvents(runId);
  const sessions = useCaptureSessions(runId);
  const bound = useRunSensors(runId);
  if (events.isPending) return <Loading />;
  if (events.isError) return <Empty title="The history could not be loaded." />;
  const sensorNames = new Map((bound.data?.items ?? []).map(({ sensor }) => [sensor.id, sensor.name]));
  const sessionNumbers = new Map((sessions.data?.items ?? []).map((session) => [session.id, session.ordinal_number]));
  const names = { sensor: (id: string) => sensorNames.get(id) ?? "a sensor", session: (id: string) => sessionNumbers.get(id) };
  const items = [...events.data.items].reverse();
  return (
    <section className="card card-pad" aria-label="History">
      <h2 className="card-title">
        History <span className="count">{items.length}</span>
      </h2>
      <ol className="timeline">
        {items.map((entry) => (
          <li key={entry.id} data-action={entry.action}>
            <span className="timeline-dot" aria-hidden="true" />
            <div>
              <strong>{userName(entry.actor_id)}</strong> {describeEvent(entry, names)}
              <div className="muted timeline-at" title={formatDateTime(entry.at)}>
                {relativeTime(entry.at)}
                {entry.request_id ? <span className="mono"> · {entry.request_id.slice(0, 8)}</span> : null}
              </div>
            </div>
          </li>
        ))}
      </ol>
      {events.data.next_cursor ? <p className="field-hint">The oldest 500 events are shown.</p> : null}
    </section>
  );
}
