import { describe, expect, it } from "vitest";

import { SeriesBuffer } from "./series-buffer";

describe("SeriesBuffer", () => {
  it("keeps points in x order, a late one in its place", () => {
    const buffer = new SeriesBuffer(8);
    [1, 2, 4, 3, 5].forEach((x) => buffer.push(x, x * 10));

    const [xs, ys] = buffer.view();
    expect([...xs]).toEqual([1, 2, 3, 4, 5]);
    expect([...ys]).toEqual([10, 20, 30, 40, 50]);
    expect(buffer.last()).toEqual({ x: 5, y: 50 });
  });

  it("gives the window from an x on, without copying", () => {
    const buffer = new SeriesBuffer(8);
    [1, 2, 2, 3, 5].forEach((x) => buffer.push(x, x * 10));
    const [xs, ys] = buffer.viewFrom(2);
    expect([...xs]).toEqual([2, 2, 3, 5]);
    expect([...ys]).toEqual([20, 20, 30, 50]);
    expect(buffer.viewFrom(6)[0].length).toBe(0);
    expect(buffer.viewFrom(0)[0].length).toBe(5);
  });

  it("stays within its capacity by dropping the oldest quarter", () => {
    const buffer = new SeriesBuffer(8);
    for (let x = 0; x < 1000; x++) buffer.push(x, x);

    expect(buffer.length).toBeLessThanOrEqual(8);
    const [xs] = buffer.view();
    expect(xs[xs.length - 1]).toBe(999);
    expect([...xs]).toEqual([...xs].sort((a, b) => a - b));
  });
});
