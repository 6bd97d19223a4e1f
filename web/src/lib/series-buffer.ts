// A sensor's recent points for a live chart: two preallocated arrays that uPlot reads as they are
// (no copy per frame). Bounded: when full, the oldest quarter goes, so an hour of streaming keeps
// the same memory as a minute.

export class SeriesBuffer {
  readonly capacity: number;
  private readonly xs: Float64Array;
  private readonly ys: Float64Array;
  private size = 0;

  constructor(capacity: number) {
    if (capacity < 4) throw new Error("capacity below 4");
    this.capacity = capacity;
    this.xs = new Float64Array(capacity);
    this.ys = new Float64Array(capacity);
  }

  get length(): number {
    return this.size;
  }

  /** Adds a point, keeping x ascending (a late point is put in its place). */
  push(x: number, y: number): void {
    if (this.size === this.capacity) {
      const drop = this.capacity >> 2;
      this.xs.copyWithin(0, drop, this.size);
      this.ys.copyWithin(0, drop, this.size);
      this.size -= drop;
    }
    let at = this.size;
    if (at > 0 && (this.xs[at - 1] as number) > x) {
      at = this.insertionPoint(x);
      this.xs.copyWithin(at + 1, at, this.size);
      this.ys.copyWithin(at + 1, at, this.size);
    }
    this.xs[at] = x;
    this.ys[at] = y;
    this.size += 1;
  }

  /** The points as uPlot's aligned data: [x seconds, y], views on the buffer. */
  view(): [Float64Array, Float64Array] {
    return [this.xs.subarray(0, this.size), this.ys.subarray(0, this.size)];
  }

  /** The points from `x` on (a live window), as views on the buffer. */
  viewFrom(x: number): [Float64Array, Float64Array] {
    const from = this.firstAtOrAfter(x);
    return [this.xs.subarray(from, this.size), this.ys.subarray(from, this.size)];
  }

  first(): { x: number; y: number } | null {
    return this.size === 0 ? null : { x: this.xs[0] as number, y: this.ys[0] as number };
  }

  last(): { x: number; y: number } | null {
    return this.size === 0 ? null : { x: this.xs[this.size - 1] as number, y: this.ys[this.size - 1] as number };
  }

  private firstAtOrAfter(x: number): number {
    let low = 0;
    let high = this.size;
    while (low < high) {
      const mid = (low + high) >> 1;
      if ((this.xs[mid] as number) < x) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  private insertionPoint(x: number): number {
    let low = 0;
    let high = this.size;
    while (low < high) {
      const mid = (low + high) >> 1;
      if ((this.xs[mid] as number) <= x) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}
