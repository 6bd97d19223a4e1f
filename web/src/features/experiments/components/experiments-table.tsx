import { Link } from "react-router";

import { BulkBar } from "../../../components/bulk-bar";
import { SelectAllCell, SelectCell, useSelection } from "../../../components/selection";
import { Button, Empty, Loading, StatusBadge, Tags } from "../../../components/ui";
import { formatDateTime, relativeTime } from "../../../lib/format";
import { useBulkExperimentChange, useExperiments, type ExperimentFilters } from "../api";
import { hasFilters } from "../filters";

const BULK_STATUSES = [
  { status: "running", label: "Start" },
  { status: "finished", label: "Finish" },
  { status: "failed", label: "Mark failed" },
  { status: "archived", label: "Archive" },
] as const;

/** The project's experiments, paged; editors select some to change their status or tags at once. */
export function ExperimentsTable({
  projectId,
  filters,
  canEdit,
  experimentPath,
  emptyAction,
}: {
  projectId: string;
  filters: ExperimentFilters;
  canEdit: boolean;
  experimentPath: (experimentId: string) => string;
  emptyAction?: React.ReactNode;
}) {
  const experiments = useExperiments(projectId, filters);
  const bulk = useBulkExperimentChange();
  const selection = useSelection();
  if (experiments.isPending) return <Loading />;
  if (experiments.isError) return <Empty title="Experiments could not be loaded." />;
  const items = experiments.data.pages.flatMap((page) => page.items);
  if (items.length === 0) {
    return hasFilters(filters) ? (
      <Empty title="No experiment matches these filters." />
    ) : (
      <Empty title="No experiments yet">
        <p className="muted">An experiment groups the runs of one investigation: a test campaign, a sweep, a rig.</p>
        {emptyAction}
      </Empty>
    );
  }
  const selected = items.filter((experiment) => selection.picked.has(experiment.id));
  return (
    <div className="card">
      {canEdit && selected.length > 0 ? (
        <BulkBar
          noun="experiment"
          selected={selected}
          statuses={BULK_STATUSES}
          apply={(ids, change) => bulk.mutateAsync({ ids, change })}
          busy={bulk.isPending}
          onDone={() => selection.set([])}
        />
      ) : null}
      <table className="table" aria-label="Experiments" aria-busy={experiments.isFetching}>
        <thead>
          <tr>
            {canEdit ? <SelectAllCell label="Select every experiment" ids={items.map((item) => item.id)} selection={selection} /> : null}
            <th scope="col">Name</th>
            <th scope="col">Status</th>
            <th scope="col">Tags</th>
            <th scope="col">Type</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {items.map((experiment) => (
            <tr key={experiment.id} data-testid={`experiment-${experiment.name}`}>
              {canEdit ? <SelectCell label={`Select ${experiment.name}`} id={experiment.id} selection={selection} /> : null}
              <td className="cell-main">
                <Link to={experimentPath(experiment.id)}>{experiment.name}</Link>
                {experiment.description ? <div className="muted clamp-1">{experiment.description}</div> : null}
              </td>
              <td>
                <StatusBadge status={experiment.status} />
              </td>
              <td>
                <Tags tags={experiment.tags} />
              </td>
              <td className="muted">{experiment.experiment_type ?? "—"}</td>
              <td className="muted" title={formatDateTime(experiment.created_at)}>
                {relativeTime(experiment.created_at)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {experiments.hasNextPage ? (
        <div className="table-footer">
          <Button busy={experiments.isFetchingNextPage} onClick={() => experiments.fetchNextPage()}>
            Load more
          </Button>
        </div>
      ) : null}
    </div>
  );
}
