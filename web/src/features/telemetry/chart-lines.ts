// The lines of a live chart (one per sensor and channel, from what the stream has seen) and its
// time axis' labels.
import { SINGLE_CHANNEL, type LiveStream } from "./live-stream";

export interface ChartSensor {
  id: string;
  name: string;
  unit: string;
  color: string;
}

// The channels of one sensor share its colour, told apart by the line's dashes.
const DASHES: (number[] | undefined)[] = [undefined, [8, 4], [2, 3], [12, 3, 3, 3]];

export interface Line {
  sensorId: string;
  signal: string;
  label: string;
  color: string;
  dash: number[] | undefined;
}

/** The lines of a chart: one per sensor and channel that has readings (a sensor without any yet
 * gets its single-channel line), the single channel first, then by name. */
export function chartLines(stream: LiveStream, sensors: readonly ChartSensor[]): Line[] {
  return sensors.flatMap((sensor) => {
    const seen = [...(stream.series.get(sensor.id)?.channels.keys() ?? [])];
    const signals = seen.length ? seen.sort((a, b) => (a === SINGLE_CHANNEL ? -1 : b === SINGLE_CHANNEL ? 1 : a.localeCompare(b))) : [SINGLE_CHANNEL];
    return signals.map((signal, index) => ({
      sensorId: sensor.id,
      signal,
      label: signal === SINGLE_CHANNEL ? sensor.name : `${sensor.name} · ${signal}`,
      color: sensor.color,
      dash: DASHES[index % DASHES.length],
    }));
  });
}


const TIME = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });

/** Tick labels: hh:mm:ss in local time, with tenths when ticks are less than a second apart. */
export function timeTicks(splits: readonly number[]): string[] {
  const step = splits.length > 1 ? (splits[1] as number) - (splits[0] as number) : 1;
  return splits.map((at) => TIME.format(at * 1000) + (step < 1 ? `.${Math.floor((at % 1) * 10 + 1e-6)}` : ""));
}
