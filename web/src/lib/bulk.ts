// What a bulk change did to each selected item (run, experiment): all changed, or (the API is
// all or nothing) none, with the reason of each item that could not take it.
import { isApiError } from "./api";

export interface BulkItem {
  id: string;
  name: string;
}

export interface ItemOutcome extends BulkItem {
  ok: boolean;
  /** Why this item refused the change; null for one that took it or was held back by others. */
  reason: string | null;
}

export function bulkOutcomes(selected: readonly BulkItem[], error: unknown): ItemOutcome[] {
  if (!error) return selected.map((item) => ({ ...item, ok: true, reason: null }));
  const reasons = new Map(isApiError(error) ? error.itemErrors.map((item) => [item.id, item.detail]) : []);
  return selected.map((item) => ({ ...item, ok: false, reason: reasons.get(item.id) ?? null }));
}

export function summary(outcomes: readonly ItemOutcome[], noun: string): string {
  const plural = (n: number) => `${noun}${n === 1 ? "" : "s"}`;
  if (outcomes.every((item) => item.ok)) return `${outcomes.length} ${plural(outcomes.length)} changed.`;
  const refused = outcomes.filter((item) => item.reason !== null).length;
  return `Nothing changed: ${refused} of ${outcomes.length} ${plural(outcomes.length)} cannot take it.`;
}
