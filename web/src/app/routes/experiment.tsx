import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router";

import { Button, Empty, Loading } from "../../components/ui";
import { ExperimentHeader, useExperiment } from "../../features/experiments";
import { CreateRunDialog, RunsTable, useRuns } from "../../features/runs";
import { paths } from "../paths";
import { useProjectContext } from "./project-layout";

export function ExperimentRoute() {
  const { project, canEdit } = useProjectContext();
  const { experimentId = "" } = useParams();
  const experiment = useExperiment(experimentId);
  const running = useRuns(experimentId, "running");
  const [creating, setCreating] = useState(false);
  const navigate = useNavigate();

  if (experiment.isPending) return <Loading />;
  if (experiment.isError || experiment.data.project_id !== project.id) {
    return (
      <div className="page">
        <Empty title="No such experiment in this project.">
          <Link to={paths.experiments(project.id)}>All experiments</Link>
        </Empty>
      </div>
    );
  }
  const archived = experiment.data.status === "archived";
  const createButton =
    canEdit ? (
      <Button variant="primary" onClick={() => setCreating(true)} disabledReason={archived ? "An archived experiment takes no new runs." : null}>
        New run
      </Button>
    ) : null;
  return (
    <div className="page">
      <nav className="breadcrumbs" aria-label="Breadcrumbs">
        <Link to={paths.experiments(project.id)}>Experiments</Link>
        <span aria-hidden="true">/</span>
        <span aria-current="page">{experiment.data.name}</span>
      </nav>
      <ExperimentHeader experiment={experiment.data} canEdit={canEdit} hasRunningRuns={(running.data?.items.length ?? 0) > 0} />
      <section className="section">
        <div className="section-head">
          <h2>Runs</h2>
          {createButton}
        </div>
        <RunsTable experimentId={experimentId} runPath={(runId) => paths.run(project.id, runId)} canEdit={canEdit} emptyAction={createButton} />
      </section>
      {canEdit ? (
        <CreateRunDialog
          experimentId={experimentId}
          open={creating}
          onClose={() => setCreating(false)}
          onCreated={(run) => {
            setCreating(false);
            navigate(paths.run(project.id, run.id));
          }}
        />
      ) : null}
    </div>
  );
}
