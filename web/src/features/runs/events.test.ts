import { describe, expect, it } from "vitest";

import { describeEvent, type AuditEntry } from "./events";

function entry(action: string, before: Record<string, unknown> | null, after: Record<string, unknown> | null): AuditEntry {
  return {
    id: 1,
    project_id: "p",
    actor_id: "u",
    actor_role: "editor",
    action,
    entity_type: "run",
    entity_id: "r",
    parent_id: "e",
    before,
    after,
    request_id: "q",
    at: "2026-01-12T09:00:00Z",
  };
}

describe("describeEvent", () => {
  it("says what each kind of run event did", () => {
    expect(describeEvent(entry("run.created", null, { name: "run-001" }))).toBe("created the run");
    expect(describeEvent(entry("run.status_changed", { status: "draft" }, { status: "running", started_at: "…" }))).toBe(
      "changed the status from draft to running",
    );
    expect(describeEvent(entry("run.updated", { notes: "" }, { notes: "windy", updated_at: "…" }))).toBe("changed notes");
    expect(describeEvent(entry("run.tags_updated", { tags: [] }, { tags: ["a", "b"] }))).toBe("set the tags to a, b");
    expect(describeEvent(entry("capture_session.started", null, { ordinal_number: 2 }))).toBe("started capture session #2");
    expect(describeEvent(entry("capture_session.stopped", { status: "running" }, { status: "failed", failure_reason: "probe dropped" }))).toBe(
      "stopped a capture session as failed: probe dropped",
    );
    const names = { sensor: (id: string) => (id === "s1" ? "Pitot" : id), session: (id: string) => (id === "r" ? 3 : undefined) };
    expect(describeEvent(entry("run.sensor_bound", null, { sensor_id: "s1" }), names)).toBe("bound sensor Pitot");
    expect(describeEvent(entry("capture_session.stopped", { status: "running" }, { status: "succeeded" }), names)).toBe("stopped capture session #3 as succeeded");
    expect(describeEvent(entry("artifact.approved", null, {}))).toBe("artifact approved");
  });
});
