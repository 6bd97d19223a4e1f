// The run status machine as the experiment service enforces it (openapi: update_run), and when
// capture can start or stop (start_capture_session, stop_capture_session).
import type { StatusAction } from "../../components/status-controls";
import type { Schemas } from "../../lib/api";

export type RunStatus = Schemas["RunStatus"];

const NEXT: Record<RunStatus, readonly RunStatus[]> = {
  draft: ["running"],
  running: ["succeeded", "failed"],
  succeeded: ["archived"],
  failed: ["archived"],
  archived: [],
};

const LABELS: Record<RunStatus, string> = {
  draft: "Draft",
  running: "Start run",
  succeeded: "Mark succeeded",
  failed: "Mark failed",
  archived: "Archive",
};

export interface RunContext {
  canEdit: boolean;
  captureRunning: boolean;
  experimentArchived: boolean;
}

export function runMoveReason(from: RunStatus, to: RunStatus, { canEdit, captureRunning, experimentArchived }: RunContext): string | null {
  if (!canEdit) return "Viewers cannot change the status.";
  if (!NEXT[from].includes(to)) {
    if (from === "archived") return "An archived run is final.";
    if (from === "draft") return "Start the run first.";
    if (from === "running") return "Finish the run first.";
    return `A run cannot go from ${from} to ${to}.`;
  }
  if (to === "running" && experimentArchived) return "The experiment is archived.";
  if (to !== "running" && captureRunning) return "Capture is running: stop it first.";
  return null;
}

// The moves offered from each status: the next ones, and archive (disabled, with its reason,
// until the run has finished).
const SHOWN: Record<RunStatus, readonly RunStatus[]> = {
  draft: ["running", "archived"],
  running: ["succeeded", "failed", "archived"],
  succeeded: ["archived"],
  failed: ["archived"],
  archived: [],
};

export function runActions(status: RunStatus, context: RunContext): StatusAction<RunStatus>[] {
  return SHOWN[status].map((to) => ({ to, label: LABELS[to], reason: runMoveReason(status, to, context) }));
}

/** Whether capture may still happen in a run of this status (now or once it starts). */
export function captureOpen(status: RunStatus): boolean {
  return status === "draft" || status === "running";
}

/** Why capture cannot start now, or null. */
export function captureStartReason(status: RunStatus, { canEdit, captureRunning }: Pick<RunContext, "canEdit" | "captureRunning">): string | null {
  if (!canEdit) return "Viewers cannot start capture.";
  if (captureRunning) return "Capture is already running.";
  if (status === "draft") return "Start the run first: capture runs inside a running run.";
  if (status !== "running") return `The run is ${status}: capture needs a running run.`;
  return null;
}
