// One live telemetry stream (SSE through the gateway) for a set of sensors, feeding bounded
// buffers per sensor and channel (physical and raw). Charts read the buffers on their own frames: no React render per point.
// The browser's EventSource reconnects by itself and sends Last-Event-ID, so a network drop or
// a stream the service ended (token expired: the gateway refreshes the session on the next
// request) resumes after the last batch received.
import { SeriesBuffer } from "../../lib/series-buffer";

export type StreamState = "connecting" | "live" | "reconnecting" | "closed";

export interface StreamReading {
  timestamp: string;
  sensor_id: string;
  raw_value?: number;
  physical_value?: number | null;
  /** The channel of a multi-channel sensor (`value` for a single-channel one). */
  signal?: string;
}

// Ends after which reconnecting cannot help.
const FINAL_ENDS = new Set(["access_revoked", "raw_values_hidden"]);
export const POINTS_PER_SENSOR = 50_000;
export const SINGLE_CHANNEL = "value";

/** One channel of a sensor: both layers. */
export class ChannelSeries {
  /** Physical values (the raw one where the reading has none: no profile was valid). */
  readonly physical: SeriesBuffer;
  readonly raw: SeriesBuffer;

  constructor(capacity: number) {
    this.physical = new SeriesBuffer(capacity);
    this.raw = new SeriesBuffer(capacity);
  }

  layer(layer: Layer): SeriesBuffer {
    return layer === "raw" ? this.raw : this.physical;
  }
}

/** What a stream keeps of one sensor: each channel's layers (made as readings of it come, so a
 * single-channel sensor holds one), and when its last reading was taken and came. */
export class SensorSeries {
  readonly channels = new Map<string, ChannelSeries>();
  /** The service sends no raw values to this user (the project's raw-value policy). */
  rawHidden = false;
  /** Seconds since the epoch: the newest reading's timestamp, and when it arrived here. */
  lastTakenAt: number | null = null;
  lastArrivedAt: number | null = null;
  /** The newest reading's physical value (or raw, without a profile) and its channel. */
  lastValue: { value: number; signal: string } | null = null;
  /** Grows with each batch that brought this sensor readings: its charts redraw when it changed. */
  version = 0;

  constructor(private readonly capacity: number) {}

  channel(signal: string): ChannelSeries {
    let found = this.channels.get(signal);
    if (!found) {
      found = new ChannelSeries(this.capacity);
      this.channels.set(signal, found);
    }
    return found;
  }
}

export type Layer = "physical" | "raw";

export class LiveStream {
  readonly series = new Map<string, SensorSeries>();
  /** Grows with each batch taken in: a chart redraws when it changed. */
  version = 0;
  state: StreamState = "connecting";
  endReason: string | null = null;
  private source: EventSource | null = null;
  private readonly listeners = new Set<() => void>();

  constructor(sensorIds: readonly string[], capacity = POINTS_PER_SENSOR) {
    for (const id of sensorIds) this.series.set(id, new SensorSeries(capacity));
  }

  open(url: string, EventSourceImpl: typeof EventSource = EventSource): void {
    const source = new EventSourceImpl(url);
    this.source = source;
    source.onopen = () => this.setState("live");
    source.onerror = () => this.setState(source.readyState === EventSourceImpl.CLOSED ? "closed" : "reconnecting");
    source.addEventListener("readings", (event) => this.take((event as MessageEvent<string>).data));
    source.addEventListener("end", (event) => {
      const reason = String((JSON.parse((event as MessageEvent<string>).data) as { reason?: unknown }).reason ?? "");
      this.endReason = reason;
      if (FINAL_ENDS.has(reason)) this.close();
      else this.setState("reconnecting");
    });
  }

  /** One `readings` event's data into each sensor's layers. */
  take(data: string, now: number = Date.now() / 1000): void {
    const batch = JSON.parse(data) as { readings?: StreamReading[] };
    const touched = new Set<SensorSeries>();
    for (const reading of batch.readings ?? []) {
      const series = this.series.get(reading.sensor_id);
      if (!series) continue;
      touched.add(series);
      const at = Date.parse(reading.timestamp) / 1000;
      const signal = reading.signal ?? SINGLE_CHANNEL;
      const channel = series.channel(signal);
      const physical = reading.physical_value ?? reading.raw_value;
      if (typeof physical === "number") channel.physical.push(at, physical);
      if (typeof reading.raw_value === "number") channel.raw.push(at, reading.raw_value);
      else series.rawHidden = true;
      if (typeof physical === "number" && at >= (series.lastTakenAt ?? at)) series.lastValue = { value: physical, signal };
      series.lastTakenAt = Math.max(series.lastTakenAt ?? at, at);
      series.lastArrivedAt = now;
    }
    touched.forEach((series) => (series.version += 1));
    this.version += 1;
  }

  close(): void {
    this.source?.close();
    this.source = null;
    this.setState("closed");
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  snapshot = (): StreamState => this.state;

  private setState(state: StreamState): void {
    if (state === this.state) return;
    this.state = state;
    this.listeners.forEach((listener) => listener());
  }
}

export function streamUrl(origin: string, sensorIds: readonly string[]): string {
  const url = new URL("/api/v1/telemetry/stream", origin);
  sensorIds.forEach((id) => url.searchParams.append("sensor_id", id));
  return url.toString();
}
