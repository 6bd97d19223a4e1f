import { useState } from "react";

import { StatusControls } from "../../../components/status-controls";
import { Button, PageHeader, StatusBadge } from "../../../components/ui";
import { useUpdateRun, type Run } from "../api";
import { runActions } from "../status";
import { EditRunDialog } from "./edit-run-dialog";

export function RunHeader({ run, canEdit, captureRunning, experimentArchived, eyebrow }: {
  run: Run;
  canEdit: boolean;
  captureRunning: boolean;
  experimentArchived: boolean;
  eyebrow: React.ReactNode;
}) {
  const update = useUpdateRun(run.id);
  const [editing, setEditing] = useState(false);
  return (
    <>
    <PageHeader
      eyebrow={eyebrow}
      title={
        <>
          {run.name} <StatusBadge status={run.status} />
        </>
      }
      actions={
        canEdit ? (
          <>
            <Button size="sm" onClick={() => setEditing(true)} disabledReason={run.status === "archived" ? "An archived run is read-only." : null}>
              Edit
            </Button>
            <StatusControls
              label="Run status"
              actions={runActions(run.status, { canEdit, captureRunning, experimentArchived })}
              busy={update.isPending}
              onMove={(status) => update.mutate({ status })}
            />
          </>
        ) : null
      }
    />
    {canEdit ? <EditRunDialog run={run} open={editing} onClose={() => setEditing(false)} /> : null}
    </>
  );
}
