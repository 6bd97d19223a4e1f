import { describe, expect, it } from "vitest";

import { bulkOutcomes, summary } from "./bulk";
import { ApiError } from "./problem";

const RUNS = [
  { id: "r1", name: "run-1" },
  { id: "r2", name: "run-2" },
];

describe("bulkOutcomes", () => {
  it("marks every item changed when the call succeeded", () => {
    const outcomes = bulkOutcomes(RUNS, null);
    expect(outcomes.map((item) => item.ok)).toEqual([true, true]);
    expect(summary(outcomes, "run")).toBe("2 runs changed.");
  });

  it("gives each refusing item its reason; the others changed nothing either", () => {
    const error = new ApiError({
      status: 409,
      code: "batch_failed",
      title: "Conflict",
      itemErrors: [{ id: "r2", code: "invalid_transition", detail: "A run cannot go from draft to succeeded." }],
    });
    const outcomes = bulkOutcomes(RUNS, error);
    expect(outcomes).toEqual([
      { id: "r1", name: "run-1", ok: false, reason: null },
      { id: "r2", name: "run-2", ok: false, reason: "A run cannot go from draft to succeeded." },
    ]);
    expect(summary(outcomes, "experiment")).toBe("Nothing changed: 1 of 2 experiments cannot take it.");
  });
});
