import type { ReactNode } from "react";
import { Link } from "react-router";

import { Empty, Loading, StatusBadge, Tags } from "../../../components/ui";
import { formatDateTime, formatDuration, relativeTime } from "../../../lib/format";
import { BulkBar } from "../../../components/bulk-bar";
import { SelectAllCell, SelectCell, useSelection } from "../../../components/selection";
import { useBulkRunChange, useRuns } from "../api";

const BULK_STATUSES = [
  { status: "running", label: "Start" },
  { status: "succeeded", label: "Mark succeeded" },
  { status: "failed", label: "Mark failed" },
  { status: "archived", label: "Archive" },
] as const;

/** The experiment's runs; editors select some to change their status or tags at once. */
export function RunsTable({ experimentId, runPath, canEdit, emptyAction }: { experimentId: string; runPath: (runId: string) => string; canEdit: boolean; emptyAction?: ReactNode }) {
  const runs = useRuns(experimentId);
  const selection = useSelection();
  const bulk = useBulkRunChange();
  if (runs.isPending) return <Loading />;
  if (runs.isError) return <Empty title="Runs could not be loaded." />;
  if (runs.data.items.length === 0) {
    return (
      <Empty title="No runs yet">
        <p className="muted">A run is one execution: its parameters, code version, environment and capture sessions.</p>
        {emptyAction}
      </Empty>
    );
  }
  const items = runs.data.items;
  const selected = items.filter((run) => selection.picked.has(run.id));
  return (
    <div className="card">
      {canEdit && selected.length > 0 ? (
        <BulkBar
          noun="run"
          selected={selected}
          statuses={BULK_STATUSES}
          apply={(ids, change) => bulk.mutateAsync({ ids, change })}
          busy={bulk.isPending}
          onDone={() => selection.set([])}
        />
      ) : null}
      <table className="table" aria-label="Runs">
        <thead>
          <tr>
            {canEdit ? <SelectAllCell label="Select every run" ids={items.map((item) => item.id)} selection={selection} /> : null}
            <th scope="col">Run</th>
            <th scope="col">Status</th>
            <th scope="col">Tags</th>
            <th scope="col">Git SHA</th>
            <th scope="col">Started</th>
            <th scope="col">Duration</th>
          </tr>
        </thead>
        <tbody>
          {items.map((run) => (
            <tr key={run.id} data-testid={`run-${run.name}`}>
              {canEdit ? <SelectCell label={`Select ${run.name}`} id={run.id} selection={selection} /> : null}
              <td className="cell-main">
                <Link to={runPath(run.id)}>{run.name}</Link>
              </td>
              <td>
                <StatusBadge status={run.status} />
              </td>
              <td>
                <Tags tags={run.tags} />
              </td>
              <td>{run.git_sha ? <code>{run.git_sha.slice(0, 10)}</code> : <span className="muted">—</span>}</td>
              <td className="muted" title={formatDateTime(run.started_at)}>
                {run.started_at ? relativeTime(run.started_at) : "—"}
              </td>
              <td className="muted">{formatDuration(run.duration_seconds)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
