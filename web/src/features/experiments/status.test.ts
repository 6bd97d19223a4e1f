import { describe, expect, it } from "vitest";

import { filtersFromSearch, searchFromFilters } from "./filters";
import { experimentActions, experimentMoveReason } from "./status";

describe("experiment status moves", () => {
  it("follows the service's machine", () => {
    const can = { hasRunningRuns: false, canEdit: true };
    const allowed = (from: Parameters<typeof experimentActions>[0]) =>
      experimentActions(from, can)
        .filter((action) => action.reason === null)
        .map((action) => action.to);

    expect(allowed("draft")).toEqual(["running", "archived"]);
    expect(allowed("running")).toEqual(["finished", "failed", "archived"]);
    expect(allowed("finished")).toEqual(["archived"]);
    expect(allowed("archived")).toEqual([]);
  });

  it("says why a move is refused", () => {
    expect(experimentMoveReason("draft", "finished", { hasRunningRuns: false, canEdit: true })).toBe("An experiment cannot go from draft to finished.");
    expect(experimentMoveReason("running", "finished", { hasRunningRuns: true, canEdit: true })).toBe("A run is still running: finish it first.");
    expect(experimentMoveReason("archived", "running", { hasRunningRuns: false, canEdit: true })).toBe("An archived experiment is final.");
  });
});

describe("experiment filters in the URL", () => {
  it("round-trip and drop what the API would refuse", () => {
    const filters = filtersFromSearch(new URLSearchParams("status=running&status=bogus&status=running&q=%20wing%20&tags=aero&sort=name"));

    expect(filters).toEqual({ status: ["running"], q: "wing", tags: ["aero"], sort: "name" });
    expect(searchFromFilters(filters).toString()).toBe("status=running&q=wing&tags=aero&sort=name");
    expect(filtersFromSearch(new URLSearchParams("sort=drop+table")).sort).toBe("-created_at");
    expect(searchFromFilters(filtersFromSearch(new URLSearchParams())).toString()).toBe("");
  });
});
