import { describe, expect, it } from "vitest";

import { activityWindow, perMinute, searchFromSensorFilters, sensorFiltersFromSearch } from "./filters";

describe("sensor filters", () => {
  it("go to the URL and back, unknown statuses dropped", () => {
    const filters = { status: ["online" as const, "offline" as const], type: "pressure", q: "pitot" };
    expect(sensorFiltersFromSearch(searchFromSensorFilters(filters))).toEqual(filters);
    expect(sensorFiltersFromSearch(new URLSearchParams("status=asleep&status=delayed")).status).toEqual(["delayed"]);
  });
});

describe("activity", () => {
  it("counts readings per minute over the last hour, channels added up", () => {
    const now = Date.parse("2026-12-04T10:30:20Z");
    const window = activityWindow(now);
    expect(window.to).toBe("2026-12-04T10:31:00.000Z");
    expect(window.from).toBe("2026-12-04T09:31:00.000Z");
    const counts = perMinute(
      [
        { sensor_id: "a", bucket_start: "2026-12-04T10:30:00Z", count: 5 },
        { sensor_id: "a", bucket_start: "2026-12-04T10:30:00Z", count: 2 },
        { sensor_id: "a", bucket_start: "2026-12-04T09:31:00Z", count: 1 },
        { sensor_id: "a", bucket_start: "2026-12-04T08:00:00Z", count: 9 },
      ],
      window.starts,
    );
    const row = counts.get("a") ?? [];
    expect(row.length).toBe(60);
    expect([row[0], row[59]]).toEqual([1, 7]);
    expect(row.reduce((sum, n) => sum + n, 0)).toBe(8);
  });
});
