import { StatusBadge } from "../../../components/ui";
import { relativeTime } from "../../../lib/format";
import { useNow } from "../../../lib/use-now";
import { SINGLE_CHANNEL, type LiveStream } from "../live-stream";

export interface SideSensor {
  id: string;
  name: string;
  unit: string;
  color: string;
  status: string;
  lastHeartbeat: string | null;
}

/** Each monitored sensor's last value, how old that reading is, and its liveness, re-read every
 * second. */
export function MonitorSide({ stream, sensors }: { stream: LiveStream; sensors: readonly SideSensor[] }) {
  const now = useNow(true) / 1000;
  return (
    <section className="card card-pad monitor-side" aria-label="Sensors now">
      <h2 className="card-title">Now</h2>
      <ul className="monitor-side-list">
        {sensors.map((sensor) => {
          const series = stream.series.get(sensor.id);
          const last = series?.lastValue;
          const delay = series?.lastTakenAt ? Math.max(0, now - series.lastTakenAt) : null;
          return (
            <li key={sensor.id} data-testid={`now-${sensor.name}`}>
              <div className="monitor-side-name">
                <span className="swatch" style={{ background: sensor.color }} aria-hidden="true" />
                <strong>{sensor.name}</strong>
                <StatusBadge status={sensor.status} />
              </div>
              <div className="live-value">
                {last ? `${formatValue(last.value)} ${sensor.unit}` : "—"}
                {last && last.signal !== SINGLE_CHANNEL ? <span className="muted"> ({last.signal})</span> : null}
              </div>
              <div className="muted">
                {delay === null ? "no reading yet" : `reading ${formatDelay(delay)} old`} · heartbeat{" "}
                {sensor.lastHeartbeat ? relativeTime(sensor.lastHeartbeat, now * 1000) : "never"}
              </div>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

function formatValue(value: number): string {
  return Math.abs(value) >= 1000 || (value !== 0 && Math.abs(value) < 0.01) ? value.toPrecision(4) : value.toFixed(2);
}

function formatDelay(seconds: number): string {
  return seconds < 10 ? `${seconds.toFixed(1)} s` : seconds < 120 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`;
}
