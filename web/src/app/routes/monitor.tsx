import { useMemo } from "react";
import { Link, useSearchParams } from "react-router";

import { Empty, PageHeader, Select } from "../../components/ui";
import { useCaptureSessions, useRun, useRunSensors } from "../../features/runs";
import { useSensors } from "../../features/sensors";
import { formatLayout, joinPanel, MAX_MONITOR_SENSORS, MonitorPanel, MonitorSide, movePanel, parseLayout, sensorColor, setLayer, splitSensor, StreamBadge, useLiveStream, type Marker, type Panel } from "../../features/telemetry";
import { paths } from "../paths";
import { useProjectContext } from "./project-layout";

const WINDOWS = [
  { seconds: 30, label: "30 s" },
  { seconds: 60, label: "1 min" },
  { seconds: 300, label: "5 min" },
  { seconds: 900, label: "15 min" },
];

/** Live telemetry of chosen sensors (of a run, or any of the project's), arranged in panels. The
 * choice, the arrangement and the window are in the URL. */
export function MonitorRoute() {
  const { project } = useProjectContext();
  const [search, setSearch] = useSearchParams();
  const runId = search.get("run") ?? "";
  const run = useRun(runId);
  const bound = useRunSensors(runId);
  const sessions = useCaptureSessions(runId);
  const all = useSensors(project.id);

  const chosen = (search.get("sensors") ?? (runId ? (bound.data?.items ?? []).map(({ sensor }) => sensor.id).join(",") : ""))
    .split(",")
    .filter(Boolean)
    .slice(0, MAX_MONITOR_SENSORS);
  const known = (all.data?.items ?? []).filter((sensor) => chosen.includes(sensor.id));
  const ids = known.map((sensor) => sensor.id);
  const panels = parseLayout(search.get("layout"), ids);
  const windowSeconds = Number(search.get("window")) || 60;
  const { stream, state } = useLiveStream(ids);

  const looks = new Map(known.map((sensor, index) => [sensor.id, { id: sensor.id, name: sensor.name, unit: sensor.display_unit, color: sensorColor(index) }]));
  const markers = useMemo<Marker[]>(
    () =>
      (sessions.data?.items ?? []).flatMap((session) => [
        ...(session.started_at ? [{ at: Date.parse(session.started_at) / 1000, label: `capture ${session.ordinal_number} start` }] : []),
        ...(session.stopped_at ? [{ at: Date.parse(session.stopped_at) / 1000, label: `capture ${session.ordinal_number} stop` }] : []),
      ]),
    [sessions.data],
  );

  const update = (change: Record<string, string | null>) =>
    setSearch(
      (current) => {
        const next = new URLSearchParams(current);
        Object.entries(change).forEach(([key, value]) => (value === null ? next.delete(key) : next.set(key, value)));
        return next;
      },
      { replace: true },
    );
  const arrange = (next: Panel[]) => update({ layout: formatLayout(next) });
  const toggleSensor = (sensorId: string) => {
    const next = chosen.includes(sensorId) ? chosen.filter((id) => id !== sensorId) : [...chosen, sensorId];
    update({ sensors: next.join(","), layout: formatLayout(parseLayout(search.get("layout"), next)) });
  };

  return (
    <div className="page">
      <PageHeader
        eyebrow={run.data ? <Link to={paths.run(project.id, run.data.id)}>Run {run.data.name}</Link> : project.name}
        title="Live monitor"
        actions={ids.length > 0 ? <StreamBadge stream={stream} state={state} /> : null}
      >
        <p className="lead">Drag a panel by its handle to move it, or a sensor onto another panel to draw them together.{run.data ? " Capture sessions of the run are marked on the time axis." : ""}</p>
      </PageHeader>
      <div className="monitor-grid">
        <div className="stack">
          {panels.length === 0 ? (
            <Empty title="No sensor chosen">
              <p className="muted">Pick sensors on the right: each gets a panel, live from one stream.</p>
            </Empty>
          ) : (
            panels.map((panel, index) => {
              const sensors = panel.sensorIds.flatMap((id) => looks.get(id) ?? []);
              return (
                <MonitorPanel
                  key={panel.sensorIds.join("+")}
                  index={index}
                  count={panels.length}
                  panel={panel}
                  stream={stream}
                  sensors={sensors}
                  others={[...looks.values()].filter((look) => !panel.sensorIds.includes(look.id))}
                  rawHidden={panel.sensorIds.some((id) => stream.series.get(id)?.rawHidden)}
                  windowSeconds={windowSeconds}
                  markers={markers}
                  actions={{
                    move: (to) => arrange(movePanel(panels, index, to)),
                    receive: (from) => arrange(movePanel(panels, from, index)),
                    join: (sensorId) => arrange(joinPanel(panels, sensorId, index)),
                    split: (sensorId) => arrange(splitSensor(panels, sensorId)),
                    setLayer: (layer) => arrange(setLayer(panels, index, layer)),
                  }}
                />
              );
            })
          )}
        </div>
        <div className="stack">
          <section className="card card-pad" aria-label="Monitor settings">
            <h2 className="card-title">Window</h2>
            <Select aria-label="Time window" value={windowSeconds} onChange={(e) => update({ window: e.target.value })}>
              {WINDOWS.map((option) => (
                <option key={option.seconds} value={option.seconds}>
                  last {option.label}
                </option>
              ))}
            </Select>
            <h2 className="card-title monitor-pick-title">Sensors</h2>
            <ul className="monitor-pick">
              {(all.data?.items ?? []).map((sensor) => (
                <li key={sensor.id}>
                  <label className="choice">
                    <input
                      type="checkbox"
                      checked={chosen.includes(sensor.id)}
                      disabled={!chosen.includes(sensor.id) && chosen.length >= MAX_MONITOR_SENSORS}
                      onChange={() => toggleSensor(sensor.id)}
                    />
                    {sensor.name}
                  </label>
                </li>
              ))}
            </ul>
          </section>
          {known.length > 0 ? (
            <MonitorSide
              stream={stream}
              sensors={known.map((sensor) => ({ ...(looks.get(sensor.id) as NonNullable<ReturnType<typeof looks.get>>), status: sensor.status, lastHeartbeat: sensor.last_heartbeat }))}
            />
          ) : null}
        </div>
      </div>
    </div>
  );
}
