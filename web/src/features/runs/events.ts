// A run's audit trail in words: who did what, from the entries' before/after fields.
import type { Schemas } from "../../lib/api";

export type AuditEntry = Schemas["AuditEntry"];

type Fields = Record<string, unknown> | null;

function field(fields: Fields, name: string): unknown {
  return fields ? fields[name] : undefined;
}

function changed(entry: AuditEntry): string[] {
  return Object.keys(entry.after ?? {}).filter((key) => key !== "updated_at");
}

export interface EventNames {
  sensor(id: string): string;
  /** A capture session's number in its run, if known. */
  session(id: string): number | undefined;
}

const NO_NAMES: EventNames = { sensor: (id) => id.slice(0, 8), session: () => undefined };

/** What an entry did, e.g. "changed the status from draft to running". */
export function describeEvent(entry: AuditEntry, names: EventNames = NO_NAMES): string {
  const before = entry.before as Fields;
  const after = entry.after as Fields;
  const number = field(after, "ordinal_number") ?? field(before, "ordinal_number") ?? names.session(entry.entity_id);
  const session = number === undefined ? "a capture session" : `capture session #${String(number)}`;
  switch (entry.action) {
    case "run.created":
      return "created the run";
    case "run.status_changed":
      return `changed the status from ${String(field(before, "status"))} to ${String(field(after, "status"))}`;
    case "run.tags_updated": {
      const tags = field(after, "tags");
      return Array.isArray(tags) && tags.length > 0 ? `set the tags to ${tags.join(", ")}` : "removed the tags";
    }
    case "run.updated":
      return `changed ${changed(entry).join(", ") || "the run"}`;
    case "run.sensor_bound":
      return `bound sensor ${names.sensor(String(field(after, "sensor_id")))}`;
    case "run.sensor_unbound":
      return `unbound sensor ${names.sensor(String(field(before, "sensor_id")))}`;
    case "capture_session.started":
      return `started ${session}`;
    case "capture_session.stopped": {
      const status = String(field(after, "status") ?? "stopped");
      const reason = field(after, "failure_reason");
      return `stopped ${session} as ${status}${typeof reason === "string" && reason ? `: ${reason}` : ""}`;
    }
    case "capture_session.deleted":
      return `deleted ${session}`;
    case "artifact.created":
      return `added artifact ${String(field(after, "name") ?? "")}`.trim();
    default:
      return entry.action.replace(/[._]/g, " ");
  }
}
