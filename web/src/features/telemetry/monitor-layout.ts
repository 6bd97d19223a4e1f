// The live monitor's arrangement: panels in order, each with its sensors (several share one
// chart) and the layer it draws. It lives in the URL (`layout=a+b,c~raw`), so a monitor can be
// shared and reloaded as it was arranged.
import type { Layer } from "./live-stream";

export interface Panel {
  sensorIds: readonly string[];
  layer: Layer;
}

export const MAX_MONITOR_SENSORS = 20; // the stream's limit

/** The panels a URL describes, keeping only `known` sensors, each once; every known sensor not
 * placed gets its own panel at the end. */
export function parseLayout(text: string | null, known: readonly string[]): Panel[] {
  const wanted = new Set(known);
  const placed = new Set<string>();
  const panels: Panel[] = [];
  for (const part of (text ?? "").split(",")) {
    const [ids = "", layer] = part.split("~");
    const sensorIds = ids.split("+").filter((id) => wanted.has(id) && !placed.has(id));
    sensorIds.forEach((id) => placed.add(id));
    if (sensorIds.length > 0) panels.push({ sensorIds, layer: layer === "raw" ? "raw" : "physical" });
  }
  for (const id of known) if (!placed.has(id)) panels.push({ sensorIds: [id], layer: "physical" });
  return panels;
}

export function formatLayout(panels: readonly Panel[]): string {
  return panels.map((panel) => panel.sensorIds.join("+") + (panel.layer === "raw" ? "~raw" : "")).join(",");
}

/** The panel at `from` put at `to` (the others keep their order). */
export function movePanel(panels: readonly Panel[], from: number, to: number): Panel[] {
  const moved = panels[from];
  if (!moved || from === to || to < 0 || to >= panels.length) return [...panels];
  const rest = panels.filter((_, index) => index !== from);
  return [...rest.slice(0, to), moved, ...rest.slice(to)];
}

/** The sensor drawn on the panel at `target` too, leaving its own (which goes when emptied). */
export function joinPanel(panels: readonly Panel[], sensorId: string, target: number): Panel[] {
  const into = panels[target];
  if (!into || into.sensorIds.includes(sensorId)) return [...panels];
  return panels
    .map((panel, index) =>
      index === target ? { ...panel, sensorIds: [...panel.sensorIds, sensorId] } : { ...panel, sensorIds: panel.sensorIds.filter((id) => id !== sensorId) },
    )
    .filter((panel) => panel.sensorIds.length > 0);
}

/** The sensor on a panel of its own, right after the one it shared. */
export function splitSensor(panels: readonly Panel[], sensorId: string): Panel[] {
  const at = panels.findIndex((panel) => panel.sensorIds.includes(sensorId));
  const from = panels[at];
  if (!from || from.sensorIds.length < 2) return [...panels];
  const left = { ...from, sensorIds: from.sensorIds.filter((id) => id !== sensorId) };
  return [...panels.slice(0, at), left, { sensorIds: [sensorId], layer: from.layer }, ...panels.slice(at + 1)];
}

export function setLayer(panels: readonly Panel[], index: number, layer: Layer): Panel[] {
  return panels.map((panel, i) => (i === index ? { ...panel, layer } : panel));
}
