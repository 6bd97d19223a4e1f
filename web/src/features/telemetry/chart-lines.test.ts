import { describe, expect, it } from "vitest";

import { chartLines, timeTicks } from "./chart-lines";
import { LiveStream } from "./live-stream";

describe("chartLines", () => {
  it("draws a line per sensor and channel, the sensor's colour for each, dashes apart", () => {
    const stream = new LiveStream(["a", "b"], 16);
    stream.take(
      JSON.stringify({
        readings: [
          { timestamp: "2026-01-12T09:00:01Z", sensor_id: "a", physical_value: 1, signal: "static" },
          { timestamp: "2026-01-12T09:00:01Z", sensor_id: "a", physical_value: 1, signal: "total" },
          { timestamp: "2026-01-12T09:00:01Z", sensor_id: "a", physical_value: 1 },
        ],
      }),
    );
    const lines = chartLines(stream, [
      { id: "a", name: "Pitot", unit: "Pa", color: "#111" },
      { id: "b", name: "Thermo", unit: "°C", color: "#222" },
    ]);
    expect(lines.map((line) => [line.label, line.color, Boolean(line.dash)])).toEqual([
      ["Pitot", "#111", false],
      ["Pitot · static", "#111", true],
      ["Pitot · total", "#111", true],
      ["Thermo", "#222", false], // no readings yet: its single line
    ]);
  });
});

describe("timeTicks", () => {
  it("adds tenths only when ticks are less than a second apart", () => {
    const at = Date.parse("2026-12-04T10:30:15Z") / 1000;
    const whole = timeTicks([at, at + 5]);
    expect(whole[0]).toMatch(/^\d\d:30:15$/);
    expect(timeTicks([at + 0.2, at + 0.4]).map((label) => label.slice(-4))).toEqual(["15.2", "15.4"]);
  });
});
