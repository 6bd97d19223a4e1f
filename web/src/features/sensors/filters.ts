// The sensor list's filters as the API takes them (`status`, `type`, `q`) and as the URL keeps them.
import type { Schemas } from "../../lib/api";

export type SensorStatus = Schemas["SensorStatus"];
export const SENSOR_STATUSES: readonly SensorStatus[] = ["online", "delayed", "offline", "never_seen"];

export interface SensorFilters {
  status: SensorStatus[];
  type: string;
  q: string;
}

export function sensorFiltersFromSearch(search: URLSearchParams): SensorFilters {
  return {
    status: search.getAll("status").filter((value): value is SensorStatus => (SENSOR_STATUSES as readonly string[]).includes(value)),
    type: search.get("type") ?? "",
    q: search.get("q") ?? "",
  };
}

export function searchFromSensorFilters(filters: SensorFilters): URLSearchParams {
  const search = new URLSearchParams();
  filters.status.forEach((status) => search.append("status", status));
  if (filters.type) search.set("type", filters.type);
  if (filters.q) search.set("q", filters.q);
  return search;
}

/** The last hour in minutes, as the activity sparkline counts readings. */
export function activityWindow(now: number): { from: string; to: string; starts: number[] } {
  const end = Math.floor(now / 60_000) * 60_000 + 60_000;
  const starts = Array.from({ length: 60 }, (_, i) => end - (60 - i) * 60_000);
  return { from: new Date(starts[0] as number).toISOString(), to: new Date(end).toISOString(), starts };
}

/** Readings per minute of each sensor over the window, 0 where a minute had none. */
export function perMinute(items: readonly { sensor_id: string; bucket_start: string; count: number }[], starts: readonly number[]): Map<string, number[]> {
  const index = new Map(starts.map((start, i) => [start, i]));
  const counts = new Map<string, number[]>();
  for (const item of items) {
    const at = index.get(Date.parse(item.bucket_start));
    if (at === undefined) continue;
    const row = counts.get(item.sensor_id) ?? new Array<number>(starts.length).fill(0);
    row[at] = (row[at] ?? 0) + item.count; // several rows a minute for a sensor's channels
    counts.set(item.sensor_id, row);
  }
  return counts;
}
