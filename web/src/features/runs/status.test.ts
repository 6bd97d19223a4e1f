import { describe, expect, it } from "vitest";

import { captureStartReason, runActions, runMoveReason } from "./status";

const editor = { canEdit: true, captureRunning: false, experimentArchived: false };

describe("run status moves", () => {
  it("offers start from draft, and archive only once finished", () => {
    expect(runActions("draft", editor)).toEqual([
      { to: "running", label: "Start run", reason: null },
      { to: "archived", label: "Archive", reason: "Start the run first." },
    ]);
    expect(runActions("succeeded", editor)).toEqual([{ to: "archived", label: "Archive", reason: null }]);
    expect(runActions("running", { ...editor, captureRunning: true }).map((action) => action.reason)).toEqual([
      "Capture is running: stop it first.",
      "Capture is running: stop it first.",
      "Finish the run first.",
    ]);
    expect(runActions("archived", editor)).toEqual([]);
  });

  it("refuses to finish while capture runs, with the reason", () => {
    expect(runMoveReason("running", "succeeded", { ...editor, captureRunning: true })).toBe("Capture is running: stop it first.");
    expect(runMoveReason("running", "succeeded", editor)).toBeNull();
  });

  it("refuses everything to viewers, and any move out of archived", () => {
    expect(runMoveReason("draft", "running", { ...editor, canEdit: false })).toBe("Viewers cannot change the status.");
    expect(runMoveReason("archived", "running", editor)).toBe("An archived run is final.");
    expect(runMoveReason("draft", "running", { ...editor, experimentArchived: true })).toBe("The experiment is archived.");
  });
});

describe("captureStartReason", () => {
  it("needs an editor, a running run and no running capture", () => {
    expect(captureStartReason("running", { canEdit: true, captureRunning: false })).toBeNull();
    expect(captureStartReason("draft", { canEdit: true, captureRunning: false })).toMatch(/Start the run first/);
    expect(captureStartReason("succeeded", { canEdit: true, captureRunning: false })).toMatch(/needs a running run/);
    expect(captureStartReason("running", { canEdit: true, captureRunning: true })).toBe("Capture is already running.");
    expect(captureStartReason("running", { canEdit: false, captureRunning: false })).toBe("Viewers cannot start capture.");
  });
});
