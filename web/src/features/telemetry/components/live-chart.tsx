import { useRef } from "react";

import { SINGLE_CHANNEL, type LiveStream } from "../live-stream";
import { MonitorChart } from "./monitor-chart";

const WINDOW_SECONDS = 300;
const MARKERS: never[] = [];

/** A sensor's live lines on the run page (one per channel), its newest value beside its name. */
export function LiveChart({ stream, sensorId, label, unit, color }: { stream: LiveStream; sensorId: string; label: string; unit: string; color: string }) {
  const lastValue = useRef<HTMLSpanElement>(null);
  const showLast = () => {
    const last = stream.series.get(sensorId)?.lastValue;
    if (lastValue.current) lastValue.current.textContent = last ? `${formatNumber(last.value)} ${unit}${last.signal === SINGLE_CHANNEL ? "" : ` (${last.signal})`}` : "—";
  };
  return (
    <figure className="live-chart" aria-label={`Live ${label}`}>
      <figcaption>
        <span className="live-name">{label}</span>
        <span className="live-value" ref={lastValue} data-testid={`live-value-${label}`}>
          —
        </span>
      </figcaption>
      <MonitorChart
        stream={stream}
        sensors={[{ id: sensorId, name: label, unit, color }]}
        layer="physical"
        windowSeconds={WINDOW_SECONDS}
        markers={MARKERS}
        testId={`live-chart-${label}`}
        onDraw={showLast}
      />
    </figure>
  );
}

function formatNumber(value: number): string {
  return Math.abs(value) >= 1000 || Math.abs(value) < 0.01 ? value.toPrecision(4) : value.toFixed(2);
}
