import { Link, useParams } from "react-router";

import { Empty, Loading } from "../../components/ui";
import { useExperiment } from "../../features/experiments";
import { useMembers } from "../../features/projects";
import { CapturePanel, RunEnv, RunFacts, RunHeader, RunHistory, RunParams, RunSensors, useCaptureSessions, useRun, useRunSensors } from "../../features/runs";
import { useSensors } from "../../features/sensors";
import { LivePanel } from "../../features/telemetry";
import { paths } from "../paths";
import { useProjectContext } from "./project-layout";

export function RunRoute() {
  const { project, canEdit } = useProjectContext();
  const { runId = "" } = useParams();
  const run = useRun(runId);
  const experiment = useExperiment(run.data?.experiment_id ?? "");
  const sessions = useCaptureSessions(runId);
  const members = useMembers(project.id);
  const bound = useRunSensors(runId);
  const sensors = useSensors(project.id);

  if (run.isPending) return <Loading />;
  if (run.isError || run.data.project_id !== project.id) {
    return (
      <div className="page">
        <Empty title="No such run in this project.">
          <Link to={paths.experiments(project.id)}>All experiments</Link>
        </Empty>
      </div>
    );
  }
  const names = new Map((members.data?.items ?? []).map((member) => [member.user_id, member.username]));
  const userName = (userId: string | null) => (userId ? (names.get(userId) ?? "a former member") : "—");
  const captureRunning = (sessions.data?.items ?? []).some((session) => session.status === "running");
  return (
    <div className="page">
      <nav className="breadcrumbs" aria-label="Breadcrumbs">
        <Link to={paths.experiments(project.id)}>Experiments</Link>
        <span aria-hidden="true">/</span>
        <Link to={paths.experiment(project.id, run.data.experiment_id)}>{experiment.data?.name ?? "Experiment"}</Link>
        <span aria-hidden="true">/</span>
        <span aria-current="page">{run.data.name}</span>
      </nav>
      <RunHeader run={run.data} canEdit={canEdit} captureRunning={captureRunning} experimentArchived={experiment.data?.status === "archived"} eyebrow="Run" />
      <div className="run-grid">
        <div className="stack">
          <CapturePanel run={run.data} canEdit={canEdit} userName={userName} />
          <LivePanel
            sensors={(bound.data?.items ?? []).map(({ sensor }) => ({ id: sensor.id, name: sensor.name, unit: sensor.display_unit }))}
            actions={<Link to={paths.monitor(project.id, run.data.id)}>Open in the live monitor</Link>}
          />
          <div className="two-col">
            <RunParams run={run.data} />
            <RunEnv run={run.data} />
          </div>
        </div>
        <div className="stack">
          <RunFacts run={run.data} />
          <RunSensors
            runId={run.data.id}
            canEdit={canEdit}
            archived={run.data.status === "archived"}
            choices={(sensors.data?.items ?? []).map((sensor) => ({ id: sensor.id, name: sensor.name }))}
          />
          <RunHistory runId={run.data.id} userName={userName} />
        </div>
      </div>
    </div>
  );
}
