import { useEffect, useState } from "react";

import { StatusChips } from "../../../components/status-chips";
import { Button, Input } from "../../../components/ui";
import { SENSOR_STATUSES, type SensorFilters } from "../filters";

const TYPING_DELAY_MS = 300;

/** Status chips, a type and a search over names and descriptions: the API's sensor filters. */
export function SensorFiltersBar({ filters, onChange }: { filters: SensorFilters; onChange: (filters: SensorFilters) => void }) {
  const [q, setQ] = useState(filters.q);
  const [type, setType] = useState(filters.type);

  useEffect(() => setQ(filters.q), [filters.q]);
  useEffect(() => setType(filters.type), [filters.type]);
  useEffect(() => {
    if (q.trim() === filters.q && type.trim() === filters.type) return;
    const timer = setTimeout(() => onChange({ ...filters, q: q.trim(), type: type.trim() }), TYPING_DELAY_MS);
    return () => clearTimeout(timer);
  }, [q, type, filters, onChange]);

  return (
    <div className="filters" role="search" aria-label="Filter sensors">
      <Input type="search" aria-label="Search sensors" placeholder="Search name or description…" value={q} onChange={(e) => setQ(e.target.value)} className="input filters-search" />
      <StatusChips statuses={SENSOR_STATUSES} on={filters.status} onChange={(status) => onChange({ ...filters, status })} />
      <Input aria-label="Type" placeholder="Type, e.g. pressure" value={type} onChange={(e) => setType(e.target.value)} className="input filters-tags" />
      {filters.status.length || filters.type || filters.q ? (
        <Button variant="ghost" size="sm" onClick={() => onChange({ status: [], type: "", q: "" })}>
          Clear filters
        </Button>
      ) : null}
    </div>
  );
}
