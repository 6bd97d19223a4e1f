// The experiment status machine as the experiment service enforces it (openapi: update_experiment),
// so the UI offers only the moves the API accepts and says why the others are not possible.
import type { StatusAction } from "../../components/status-controls";
import type { Schemas } from "../../lib/api";

export type ExperimentStatus = Schemas["ExperimentStatus"];

export const EXPERIMENT_STATUSES: readonly ExperimentStatus[] = ["draft", "running", "finished", "failed", "archived"];

const NEXT: Record<ExperimentStatus, readonly ExperimentStatus[]> = {
  draft: ["running", "archived"],
  running: ["finished", "failed", "archived"],
  finished: ["archived"],
  failed: ["archived"],
  archived: [],
};

const LABELS: Record<ExperimentStatus, string> = {
  draft: "Back to draft",
  running: "Start",
  finished: "Finish",
  failed: "Mark failed",
  archived: "Archive",
};

/** Every status move the UI shows for an experiment, each enabled or with its reason. */
export function experimentActions(status: ExperimentStatus, opts: { hasRunningRuns: boolean; canEdit: boolean }): StatusAction<ExperimentStatus>[] {
  const shown: ExperimentStatus[] = ["running", "finished", "failed", "archived"];
  return shown
    .filter((to) => to !== status)
    .map((to) => ({ to, label: LABELS[to], reason: experimentMoveReason(status, to, opts) }));
}

export function experimentMoveReason(
  from: ExperimentStatus,
  to: ExperimentStatus,
  { hasRunningRuns, canEdit }: { hasRunningRuns: boolean; canEdit: boolean },
): string | null {
  if (!canEdit) return "Viewers cannot change the status.";
  if (!NEXT[from].includes(to)) {
    if (from === "archived") return "An archived experiment is final.";
    return `An experiment cannot go from ${from} to ${to}.`;
  }
  if (to !== "running" && hasRunningRuns) return "A run is still running: finish it first.";
  return null;
}
