import { describe, expect, it } from "vitest";

import { LiveStream, streamUrl } from "./live-stream";

describe("LiveStream", () => {
  it("puts each reading in its sensor's buffer, physical value first", () => {
    const stream = new LiveStream(["a", "b"], 16);

    stream.take(
      JSON.stringify({
        batch_id: 1,
        readings: [
          { timestamp: "2026-01-12T09:00:01Z", sensor_id: "a", raw_value: 1, physical_value: 250 },
          { timestamp: "2026-01-12T09:00:00Z", sensor_id: "b", raw_value: 2, physical_value: null },
          { timestamp: "2026-01-12T09:00:02Z", sensor_id: "other", raw_value: 3 },
        ],
      }),
    );

    expect(stream.version).toBe(1);
    expect([stream.series.get("a")?.version, stream.series.get("b")?.version]).toEqual([1, 1]);
    expect(stream.series.get("a")?.channel("value").physical.last()).toEqual({ x: Date.parse("2026-01-12T09:00:01Z") / 1000, y: 250 });
    expect(stream.series.get("a")?.channel("value").raw.last()?.y).toBe(1);
    expect(stream.series.get("b")?.channel("value").physical.last()?.y).toBe(2);
    expect(stream.series.has("other")).toBe(false);
  });

  it("notes when the service hides raw values, and when the newest reading was taken and came", () => {
    const stream = new LiveStream(["a"], 16);
    const readings = [
      { timestamp: "2026-01-12T09:00:05Z", sensor_id: "a", physical_value: 250 },
      { timestamp: "2026-01-12T09:00:03Z", sensor_id: "a", physical_value: 240 },
    ];
    stream.take(JSON.stringify({ batch_id: 2, readings }), 1_768_208_410);

    const series = stream.series.get("a");
    expect(series?.rawHidden).toBe(true);
    expect(series?.channel("value").raw.length).toBe(0);
    expect(series?.lastValue).toEqual({ value: 250, signal: "value" });
    expect(series?.lastTakenAt).toBe(Date.parse("2026-01-12T09:00:05Z") / 1000);
    expect(series?.lastArrivedAt).toBe(1_768_208_410);
    stream.take(JSON.stringify({ batch_id: 3, readings: [{ ...readings[0], sensor_id: "other" }] }));
    expect(series?.version).toBe(1);
  });

  it("keeps the channels of a multi-channel sensor apart", () => {
    const stream = new LiveStream(["a"], 16);
    stream.take(
      JSON.stringify({
        batch_id: 4,
        readings: [
          { timestamp: "2026-01-12T09:00:01Z", sensor_id: "a", raw_value: 1, physical_value: 10, signal: "total" },
          { timestamp: "2026-01-12T09:00:02Z", sensor_id: "a", raw_value: 2, physical_value: 20, signal: "static" },
          { timestamp: "2026-01-12T09:00:03Z", sensor_id: "a", raw_value: 3, physical_value: 30, signal: "total" },
        ],
      }),
    );
    const series = stream.series.get("a");
    expect([...(series?.channels.keys() ?? [])]).toEqual(["total", "static"]);
    expect([...(series?.channel("total").physical.view()[1] ?? [])]).toEqual([10, 30]);
    expect([...(series?.channel("static").physical.view()[1] ?? [])]).toEqual([20]);
    expect(series?.lastValue).toEqual({ value: 30, signal: "total" });
  });

  it("opens one stream for all the sensors", () => {
    expect(streamUrl("http://portal.test", ["a", "b"])).toBe("http://portal.test/api/v1/telemetry/stream?sensor_id=a&sensor_id=b");
  });

  it("closes for good when access is revoked, and waits for the reconnect otherwise", () => {
    const listeners: Record<string, (event: MessageEvent<string>) => void> = {};
    class FakeSource {
      static CLOSED = 2;
      readyState = 1;
      onopen: (() => void) | null = null;
      onerror: (() => void) | null = null;
      closed = false;
      addEventListener(type: string, listener: (event: MessageEvent<string>) => void) {
        listeners[type] = listener;
      }
      close() {
        this.closed = true;
      }
    }
    const stream = new LiveStream(["a"]);
    stream.open("http://portal.test/s", FakeSource as unknown as typeof EventSource);

    listeners["end"]?.({ data: '{"reason": "token_expired"}' } as MessageEvent<string>);
    expect(stream.state).toBe("reconnecting");
    listeners["end"]?.({ data: '{"reason": "access_revoked"}' } as MessageEvent<string>);
    expect(stream.state).toBe("closed");
    expect(stream.endReason).toBe("access_revoked");
  });
});
