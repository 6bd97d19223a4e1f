import type { DragEvent } from "react";

import { Button, Select } from "../../../components/ui";
import type { Layer, LiveStream } from "../live-stream";
import type { Panel } from "../monitor-layout";
import { MonitorChart, type ChartSensor, type Marker } from "./monitor-chart";

export interface PanelActions {
  /** This panel to another place. */
  move: (to: number) => void;
  /** Another panel (dropped on this one) to this one's place. */
  receive: (from: number) => void;
  join: (sensorId: string) => void;
  split: (sensorId: string) => void;
  setLayer: (layer: Layer) => void;
}

const DRAG_TYPE = "application/x-etp-monitor";

/** What is being dragged: a whole panel (to reorder) or one sensor (to overlay it elsewhere). */
export function dragPayload(event: DragEvent): { panel: number } | { sensor: string } | null {
  const text = event.dataTransfer.getData(DRAG_TYPE);
  if (!text) return null;
  const [kind, value = ""] = text.split(":");
  return kind === "panel" ? { panel: Number(value) } : kind === "sensor" ? { sensor: value } : null;
}

/** A panel of the monitor: a chart of one or more sensors, its layer, and the moves that arrange
 * it (dragged, or with its buttons from the keyboard). */
export function MonitorPanel({
  index,
  count,
  panel,
  stream,
  sensors,
  others,
  rawHidden,
  windowSeconds,
  markers,
  actions,
}: {
  index: number;
  count: number;
  panel: Panel;
  stream: LiveStream;
  sensors: readonly ChartSensor[];
  /** Sensors on other panels, which can be overlaid on this one. */
  others: readonly ChartSensor[];
  rawHidden: boolean;
  windowSeconds: number;
  markers: readonly Marker[];
  actions: PanelActions;
}) {
  const title = sensors.map((sensor) => sensor.name).join(" + ");
  return (
    <section
      className="card monitor-panel"
      aria-label={`Panel ${title}`}
      onDragOver={(event) => event.preventDefault()}
      onDrop={(event) => {
        event.preventDefault();
        const dropped = dragPayload(event);
        if (dropped && "panel" in dropped) actions.receive(dropped.panel);
        else if (dropped) actions.join(dropped.sensor);
      }}
    >
      <header className="monitor-panel-head">
        <span className="drag-handle" draggable title="Drag to move the panel" aria-hidden="true" onDragStart={(event) => event.dataTransfer.setData(DRAG_TYPE, `panel:${index}`)}>
          ⠿
        </span>
        <ul className="sensor-chips" aria-label="Sensors on this panel">
          {sensors.map((sensor) => (
            <li key={sensor.id} className="sensor-chip" draggable title="Drag onto another panel to draw it there" onDragStart={(event) => event.dataTransfer.setData(DRAG_TYPE, `sensor:${sensor.id}`)}>
              <span className="swatch" style={{ background: sensor.color }} aria-hidden="true" />
              {sensor.name}
              {sensors.length > 1 ? (
                <button type="button" className="sensor-chip-x" aria-label={`Draw ${sensor.name} on its own panel`} onClick={() => actions.split(sensor.id)}>
                  ×
                </button>
              ) : null}
            </li>
          ))}
        </ul>
        <div className="monitor-panel-tools">
          {others.length > 0 ? (
            <Select aria-label={`Overlay a sensor on ${title}`} value="" onChange={(e) => e.target.value && actions.join(e.target.value)}>
              <option value="">Overlay…</option>
              {others.map((sensor) => (
                <option key={sensor.id} value={sensor.id}>
                  {sensor.name}
                </option>
              ))}
            </Select>
          ) : null}
          <div className="segmented" role="group" aria-label={`Values of ${title}`}>
            {(["physical", "raw"] as const).map((layer) => (
              <button
                key={layer}
                type="button"
                aria-pressed={panel.layer === layer}
                disabled={layer === "raw" && rawHidden}
                title={layer === "raw" && rawHidden ? "Raw values are not shown to you in this project." : undefined}
                onClick={() => actions.setLayer(layer)}
              >
                {layer}
              </button>
            ))}
          </div>
          <Button size="sm" variant="ghost" aria-label={`Move ${title} earlier`} disabledReason={index === 0 ? "Already first." : null} onClick={() => actions.move(index - 1)}>
            ↑
          </Button>
          <Button size="sm" variant="ghost" aria-label={`Move ${title} later`} disabledReason={index === count - 1 ? "Already last." : null} onClick={() => actions.move(index + 1)}>
            ↓
          </Button>
        </div>
      </header>
      <MonitorChart
        stream={stream}
        sensors={sensors}
        layer={panel.layer}
        windowSeconds={windowSeconds}
        markers={markers}
        testId={`monitor-chart-${sensors.map((sensor) => sensor.name).join("+")}`}
      />
    </section>
  );
}
