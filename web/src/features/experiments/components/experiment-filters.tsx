import { useEffect, useState } from "react";

import { StatusChips } from "../../../components/status-chips";
import { Button, Input, Select } from "../../../components/ui";
import { parseTags } from "../../../components/ui";
import type { ExperimentFilters } from "../api";
import { hasFilters, SORTS } from "../filters";
import { EXPERIMENT_STATUSES } from "../status";

const SEARCH_DELAY_MS = 300;

export function ExperimentFiltersBar({ filters, onChange }: { filters: ExperimentFilters; onChange: (filters: ExperimentFilters) => void }) {
  const [q, setQ] = useState(filters.q);
  const [tags, setTags] = useState(filters.tags.join(", "));

  useEffect(() => setQ(filters.q), [filters.q]);
  useEffect(() => setTags(filters.tags.join(", ")), [filters.tags]);
  useEffect(() => {
    if (q.trim() === filters.q) return;
    const timer = setTimeout(() => onChange({ ...filters, q: q.trim() }), SEARCH_DELAY_MS);
    return () => clearTimeout(timer);
  }, [q, filters, onChange]);

  return (
    <div className="filters" role="search" aria-label="Filter experiments">
      <Input type="search" aria-label="Search experiments" placeholder="Search name or description…" value={q} onChange={(e) => setQ(e.target.value)} className="input filters-search" />
      <StatusChips statuses={EXPERIMENT_STATUSES} on={filters.status} onChange={(status) => onChange({ ...filters, status })} />
      <Input
        aria-label="Tags"
        placeholder="Tags (any of)"
        value={tags}
        onChange={(e) => setTags(e.target.value)}
        onBlur={() => onChange({ ...filters, tags: parseTags(tags) })}
        onKeyDown={(e) => {
          if (e.key === "Enter") onChange({ ...filters, tags: parseTags(tags) });
        }}
        className="input filters-tags"
      />
      <Select aria-label="Sort" value={filters.sort} onChange={(e) => onChange({ ...filters, sort: e.target.value as ExperimentFilters["sort"] })}>
        {SORTS.map((sort) => (
          <option key={sort.value} value={sort.value}>
            {sort.label}
          </option>
        ))}
      </Select>
      {hasFilters(filters) ? (
        <Button variant="ghost" size="sm" onClick={() => onChange({ status: [], q: "", tags: [], sort: filters.sort })}>
          Clear filters
        </Button>
      ) : null}
    </div>
  );
}
