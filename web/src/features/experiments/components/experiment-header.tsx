import { useState } from "react";

import { StatusControls } from "../../../components/status-controls";
import { Button, PageHeader, StatusBadge, Tags } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { useUpdateExperiment, type Experiment } from "../api";
import { experimentActions } from "../status";
import { EditExperimentDialog } from "./edit-experiment-dialog";

export function ExperimentHeader({ experiment, canEdit, hasRunningRuns }: { experiment: Experiment; canEdit: boolean; hasRunningRuns: boolean }) {
  const update = useUpdateExperiment(experiment.id);
  const actions = experimentActions(experiment.status, { hasRunningRuns, canEdit });
  const [editing, setEditing] = useState(false);
  return (
    <>
    <PageHeader
      eyebrow="Experiment"
      title={
        <>
          {experiment.name} <StatusBadge status={experiment.status} />
        </>
      }
      actions={
        canEdit ? (
          <>
            <Button size="sm" onClick={() => setEditing(true)} disabledReason={experiment.status === "archived" ? "An archived experiment is read-only." : null}>
              Edit
            </Button>
            <StatusControls label="Experiment status" actions={actions} busy={update.isPending} onMove={(status) => update.mutate({ status })} />
          </>
        ) : null
      }
    >
      {experiment.description ? <p className="lead">{experiment.description}</p> : null}
      <div className="meta-line">
        <Tags tags={experiment.tags} />
        {experiment.experiment_type ? <span className="muted">type {experiment.experiment_type}</span> : null}
        <span className="muted">created {formatDateTime(experiment.created_at)}</span>
      </div>
    </PageHeader>
    {canEdit ? <EditExperimentDialog experiment={experiment} open={editing} onClose={() => setEditing(false)} /> : null}
    </>
  );
}
