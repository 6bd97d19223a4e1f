import { useState } from "react";
import { Link, useParams } from "react-router";

import { Button, Empty, Loading, PageHeader, StatusBadge } from "../../components/ui";
import { BackfillProgress, IngestErrors, ProfileDialog, ProfileTimeline, SensorProjects, useSensor } from "../../features/sensors";
import { formatDateTime, relativeTime } from "../../lib/format";
import { paths } from "../paths";
import { useProjectContext } from "./project-layout";

/** One sensor: its facts, conversion profiles, the projects it is shared with, and the batches
 * ingest refused from it. Its home project manages it; a sharing project only reads. */
export function SensorRoute() {
  const { project, canEdit, canManage } = useProjectContext();
  const { sensorId = "" } = useParams();
  const sensor = useSensor(sensorId);
  const [creating, setCreating] = useState(false);
  const [backfillId, setBackfillId] = useState<string | null>(null);

  if (sensor.isPending) return <Loading />;
  if (sensor.isError) {
    return (
      <div className="page">
        <Empty title="No such sensor in this project.">
          <Link to={paths.sensors(project.id)}>All sensors</Link>
        </Empty>
      </div>
    );
  }
  const home = sensor.data.project_id === project.id;
  const units = { input: sensor.data.input_unit, display: sensor.data.display_unit };
  return (
    <div className="page">
      <nav className="breadcrumbs" aria-label="Breadcrumbs">
        <Link to={paths.sensors(project.id)}>Sensors</Link>
        <span aria-hidden="true">/</span>
        <span aria-current="page">{sensor.data.name}</span>
      </nav>
      <PageHeader eyebrow={`Sensor · ${sensor.data.type}`} title={sensor.data.name} actions={<StatusBadge status={sensor.data.status} />}>
        <p className="lead">
          {units.input} → {units.display} · last heard {sensor.data.last_heartbeat ? <span title={formatDateTime(sensor.data.last_heartbeat)}>{relativeTime(sensor.data.last_heartbeat)}</span> : "never"}
          {home ? "" : " · shared from another project"}
        </p>
        {sensor.data.description ? <p className="muted">{sensor.data.description}</p> : null}
      </PageHeader>
      <div className="run-grid">
        <div className="stack">
          <section className="section" aria-label="Conversion profiles">
            <div className="section-head">
              <h2>Conversion profiles</h2>
              {home && canEdit ? (
                <Button variant="primary" size="sm" onClick={() => setCreating(true)}>
                  New profile
                </Button>
              ) : null}
            </div>
            <div className="card">
              {backfillId ? <BackfillProgress backfillId={backfillId} /> : null}
              <ProfileTimeline sensorId={sensorId} canManage={home && canEdit} />
            </div>
          </section>
          <section className="section" aria-label="Ingest errors">
            <div className="section-head">
              <h2>Refused batches</h2>
            </div>
            <div className="card">
              <IngestErrors sensorId={sensorId} />
            </div>
          </section>
        </div>
        <div className="stack">
          <SensorProjects sensorId={sensorId} sensorName={sensor.data.name} canShare={home && canManage} />
        </div>
      </div>
      {home && canEdit ? (
        <ProfileDialog sensorId={sensorId} units={units} open={creating} onClose={() => setCreating(false)} canRecompute={canManage} onRecomputing={setBackfillId} />
      ) : null}
    </div>
  );
}
