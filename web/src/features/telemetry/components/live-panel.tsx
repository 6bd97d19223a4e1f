import type { ReactNode } from "react";

import { Empty } from "../../../components/ui";
import { useLiveStream } from "../use-live-stream";
import { sensorColor } from "../colors";
import { LiveChart } from "./live-chart";
import { StreamBadge } from "./stream-badge";

export interface LiveSensor {
  id: string;
  name: string;
  unit: string;
}

/** Live charts of the given sensors, one panel each, from one stream. */
export function LivePanel({ sensors, actions }: { sensors: readonly LiveSensor[]; actions?: ReactNode }) {
  const { stream, state } = useLiveStream(sensors.map((sensor) => sensor.id));
  return (
    <section className="card live" aria-label="Live telemetry">
      <header className="live-head">
        <h2 className="card-title">Live telemetry</h2>
        <div className="live-head-tools">
          {sensors.length > 0 ? <StreamBadge stream={stream} state={state} /> : null}
          {actions}
        </div>
      </header>
      {sensors.length === 0 ? (
        <Empty title="No sensors bound to this run.">
          <p className="muted">Bind a sensor: its readings show here live and belong to the run's capture sessions.</p>
        </Empty>
      ) : (
        <div className="live-grid">
          {sensors.map((sensor, index) => (
            <LiveChart key={sensor.id} stream={stream} sensorId={sensor.id} label={sensor.name} unit={sensor.unit} color={sensorColor(index)} />
          ))}
        </div>
      )}
    </section>
  );
}
