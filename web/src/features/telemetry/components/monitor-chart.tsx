import { useEffect, useRef, useState } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

import { chartLines, timeTicks, type ChartSensor, type Line } from "../chart-lines";
import type { Layer, LiveStream } from "../live-stream";

export type { ChartSensor };

/** An instant drawn across the chart: a capture session's start or stop. */
export interface Marker {
  at: number; // seconds since the epoch
  label: string;
}

const HEIGHT = 200;
// Redrawn when a batch came, and at least this often so that the window slides on a quiet stream.
const SLIDE_MS = 250;

const signature = (lines: readonly Line[]) => lines.map((line) => `${line.sensorId}/${line.signal}/${line.color}`).join(",");

/** One panel: its sensors' channels over the last `windowSeconds` from the stream, each with its
 * own timestamps (uPlot's faceted mode), redrawn at most once a frame and only when its own
 * sensors got readings (or the window must slide). A channel seen for the first time re-makes
 * the chart with a line for it. The element's data-points says how many points are drawn. */
export function MonitorChart({
  stream,
  sensors,
  layer,
  windowSeconds,
  markers,
  testId,
  onDraw,
}: {
  stream: LiveStream;
  sensors: readonly ChartSensor[];
  layer: Layer;
  windowSeconds: number;
  markers: readonly Marker[];
  testId: string;
  onDraw?: () => void;
}) {
  const box = useRef<HTMLDivElement>(null);
  const markersRef = useRef(markers);
  markersRef.current = markers;
  const onDrawRef = useRef(onDraw);
  onDrawRef.current = onDraw;
  const [lineKey, setLineKey] = useState("");
  const sensorKey = sensors.map((sensor) => `${sensor.id}:${sensor.color}`).join(",");

  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const lines = chartLines(stream, sensors);
    const drawnLines = signature(lines);
    const series = sensors.flatMap((sensor) => stream.series.get(sensor.id) ?? []);
    const version = () => series.reduce((sum, one) => sum + one.version, 0);
    let range: [number, number] = [0, 1];
    const windowed = () => {
      const buffers = lines.map((line) => stream.series.get(line.sensorId)?.channels.get(line.signal)?.layer(layer));
      const newest = Math.max(Date.now() / 1000, ...buffers.map((buffer) => buffer?.last()?.x ?? 0));
      // A young stream fills the width: the window starts at its oldest point until it is full.
      const oldest = Math.min(...buffers.map((buffer) => buffer?.first()?.x ?? Infinity));
      range = [Math.max(newest - windowSeconds, Math.min(oldest, newest - 1)), newest];
      return [null, ...buffers.map((buffer) => (buffer ? buffer.viewFrom(range[0]) : [new Float64Array(), new Float64Array()]))];
    };
    const units = [...new Set(sensors.map((sensor) => (layer === "raw" ? "raw" : sensor.unit)))].join(", ");
    const plot = new uPlot(
      {
        mode: 2,
        width: Math.max(element.clientWidth, 200),
        height: HEIGHT,
        legend: { show: false },
        cursor: { show: false },
        // x: the window, whatever the data; y: the data in the window.
        scales: { x: { time: false, auto: true, range: () => range }, y: { auto: true } },
        axes: [
          { stroke: "#566275", grid: { stroke: "#eef0f4" }, ticks: { stroke: "#dfe3ea" }, space: 90, values: (_, splits) => timeTicks(splits) },
          { stroke: "#566275", grid: { stroke: "#eef0f4" }, ticks: { stroke: "#dfe3ea" }, label: units, size: 60 },
        ],
        series: [
          {},
          ...lines.map((line) => ({
            label: line.label,
            stroke: line.color,
            width: 1.5,
            ...(line.dash ? { dash: line.dash } : {}),
            paths: uPlot.paths.linear!(),
            points: { show: false },
            facets: [
              { scale: "x", auto: true },
              { scale: "y", auto: true },
            ],
          })),
        ],
        hooks: { draw: [(u: uPlot) => drawMarkers(u, markersRef.current)] },
      } as uPlot.Options,
      windowed() as unknown as uPlot.AlignedData,
      element,
    );
    element.dataset["lines"] = lines.map((line) => line.label).join("|");
    let drawn = -1;
    let drawnAt = 0;
    let frame = 0;
    const draw = (time: number) => {
      if (version() !== drawn || time - drawnAt > SLIDE_MS) {
        const now = signature(chartLines(stream, sensors));
        if (now !== drawnLines) {
          setLineKey(now); // a new channel: the effect makes the chart again
          return;
        }
        drawn = version();
        drawnAt = time;
        const data = windowed();
        plot.setData(data as unknown as uPlot.AlignedData);
        element.dataset["points"] = String(data.reduce((sum, facet) => sum + (facet ? facet[0].length : 0), 0));
        onDrawRef.current?.();
      }
      frame = requestAnimationFrame(draw);
    };
    frame = requestAnimationFrame(draw);
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(element.clientWidth, 200), height: HEIGHT }));
    resize.observe(element);
    return () => {
      cancelAnimationFrame(frame);
      resize.disconnect();
      plot.destroy();
    };
  }, [stream, sensorKey, lineKey, layer, windowSeconds]); // `sensorKey` stands for `sensors`, a new array each render

  return <div ref={box} className="live-plot" data-testid={testId} data-points="0" />;
}

function drawMarkers(u: uPlot, markers: readonly Marker[]): void {
  const { ctx, bbox } = u;
  const [min, max] = [u.scales["x"]?.min ?? 0, u.scales["x"]?.max ?? 0];
  ctx.save();
  ctx.strokeStyle = "#d49a00";
  ctx.fillStyle = "#8a6400";
  ctx.setLineDash([4, 4]);
  ctx.lineWidth = 1 * uPlot.pxRatio;
  ctx.font = `${11 * uPlot.pxRatio}px system-ui, sans-serif`;
  for (const marker of markers) {
    if (marker.at < min || marker.at > max) continue;
    const x = Math.round(u.valToPos(marker.at, "x", true));
    ctx.beginPath();
    ctx.moveTo(x, bbox.top);
    ctx.lineTo(x, bbox.top + bbox.height);
    ctx.stroke();
    ctx.fillText(marker.label, x + 4 * uPlot.pxRatio, bbox.top + 12 * uPlot.pxRatio);
  }
  ctx.restore();
}
