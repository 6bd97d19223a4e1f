import { describe, expect, it } from "vitest";

import { formatClock, formatDuration, secondsBetween } from "./format";

describe("formatClock", () => {
  it.each([
    [0, "0:00"],
    [7.9, "0:07"],
    [65, "1:05"],
    [3723, "1:02:03"],
    [-3, "0:00"],
  ])("%s s reads %s", (seconds, text) => {
    expect(formatClock(seconds)).toBe(text);
  });
});

describe("secondsBetween", () => {
  it("counts to now while a span is open", () => {
    const start = "2026-01-12T09:00:00Z";
    expect(secondsBetween(start, null, Date.parse("2026-01-12T09:01:30Z"))).toBe(90);
    expect(secondsBetween(start, "2026-01-12T09:00:05Z")).toBe(5);
  });
});

describe("formatDuration", () => {
  it("shows short spans in seconds and long ones as a clock", () => {
    expect(formatDuration(null)).toBe("—");
    expect(formatDuration(1.94)).toBe("1.9 s");
    expect(formatDuration(42)).toBe("42 s");
    expect(formatDuration(125)).toBe("2:05");
  });
});
