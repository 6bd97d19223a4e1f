// The experiment list's filters live in the URL (?status=running&status=draft&q=wing&tags=aero&sort=name),
// so a filtered list can be shared and reloaded.
import type { ExperimentFilters, ExperimentSort } from "./api";
import { EXPERIMENT_STATUSES, type ExperimentStatus } from "./status";

export const SORTS: readonly { value: ExperimentSort; label: string }[] = [
  { value: "-created_at", label: "Newest first" },
  { value: "created_at", label: "Oldest first" },
  { value: "name", label: "Name A–Z" },
  { value: "-name", label: "Name Z–A" },
];
const DEFAULT_SORT: ExperimentSort = "-created_at";

export function filtersFromSearch(search: URLSearchParams): ExperimentFilters {
  const status = search.getAll("status").filter((value): value is ExperimentStatus => (EXPERIMENT_STATUSES as readonly string[]).includes(value));
  const sort = search.get("sort");
  return {
    status: [...new Set(status)],
    q: (search.get("q") ?? "").trim().slice(0, 200),
    tags: [...new Set(search.getAll("tags").filter(Boolean))],
    sort: SORTS.some((item) => item.value === sort) ? (sort as ExperimentSort) : DEFAULT_SORT,
  };
}

export function searchFromFilters(filters: ExperimentFilters): URLSearchParams {
  const search = new URLSearchParams();
  filters.status.forEach((status) => search.append("status", status));
  if (filters.q) search.set("q", filters.q);
  filters.tags.forEach((tag) => search.append("tags", tag));
  if (filters.sort !== DEFAULT_SORT) search.set("sort", filters.sort);
  return search;
}

export function hasFilters(filters: ExperimentFilters): boolean {
  return filters.status.length > 0 || filters.q !== "" || filters.tags.length > 0;
}
