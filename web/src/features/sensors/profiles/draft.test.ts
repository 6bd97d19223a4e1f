import { describe, expect, it } from "vitest";

import { describeProfile, EMPTY_FORM, parseNumbers, payloadOf } from "./draft";

describe("payloadOf", () => {
  it("reads a linear profile, b defaulting to 0", () => {
    expect(payloadOf({ ...EMPTY_FORM, a: "2.5", b: "" })).toEqual({ conversion: { kind: "linear", payload: { a: 2.5, b: 0 } }, error: null });
    expect(payloadOf({ ...EMPTY_FORM, a: "x" }).error).toMatch(/slope/);
  });

  it("reads polynomial coefficients separated by commas or spaces, degree 5 at most", () => {
    expect(payloadOf({ ...EMPTY_FORM, kind: "polynomial", coefficients: "1, 0 2" }).conversion?.payload).toEqual({ coefficients: [1, 0, 2] });
    expect(payloadOf({ ...EMPTY_FORM, kind: "polynomial", coefficients: "1 2 3 4 5 6 7" }).error).toMatch(/At most 6/);
    expect(payloadOf({ ...EMPTY_FORM, kind: "polynomial", coefficients: "" }).error).toMatch(/coefficients/);
  });

  it("reads table points line by line and names the bad line", () => {
    const form = { ...EMPTY_FORM, kind: "table" as const, points: "0, 0\n\n1, 240\n2 510", extrapolate: true };
    expect(payloadOf(form).conversion?.payload).toEqual({ points: [{ x: 0, y: 0 }, { x: 1, y: 240 }, { x: 2, y: 510 }], extrapolate: true });
    expect(payloadOf({ ...form, points: "0, 0\n0, 1" }).error).toBe("Line 2: x must grow from line to line.");
    expect(payloadOf({ ...form, points: "0, 0\n1" }).error).toBe('Line 2: write one "x, y" pair.');
    expect(payloadOf({ ...form, points: "0, 0" }).error).toMatch(/two points/);
  });
});

describe("parseNumbers", () => {
  it("refuses anything that is not a finite number", () => {
    expect(parseNumbers("1e3, -2.5;4")).toEqual([1000, -2.5, 4]);
    expect(parseNumbers("1, Infinity")).toBeNull();
    expect(parseNumbers("1, two")).toBeNull();
  });
});

describe("describeProfile", () => {
  it("writes each kind on one line", () => {
    expect(describeProfile("linear", { a: 2.5, b: -1 })).toBe("y = 2.5·x − 1");
    expect(describeProfile("linear", { a: 3, b: 0 })).toBe("y = 3·x");
    expect(describeProfile("polynomial", { coefficients: [1, 0, -2] })).toBe("y = 1 − 2·x²");
    expect(describeProfile("table", { points: [{ x: 0, y: 0 }, { x: 1, y: 1 }], extrapolate: false })).toBe("table of 2 points, clamped outside");
    expect(describeProfile("linear", null)).toMatch(/hidden/);
  });
});
