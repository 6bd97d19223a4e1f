import { useState } from "react";

import { Button, Select } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { toasts } from "../../../lib/toast-store";
import { useProjects } from "../../projects";
import { useSensorProjects, useShareSensor, useUnshareSensor } from "../api";

/** The projects a sensor is shared with: members there see it and bind it to their runs. The
 * home project's owner shares it into projects they edit, and takes it out again. */
export function SensorProjects({ sensorId, sensorName, canShare }: { sensorId: string; sensorName: string; canShare: boolean }) {
  const linked = useSensorProjects(sensorId);
  const mine = useProjects();
  const share = useShareSensor(sensorId);
  const unshare = useUnshareSensor(sensorId);
  const [picked, setPicked] = useState("");
  const items = linked.data?.items ?? [];
  const names = new Map((mine.data?.items ?? []).map((project) => [project.id, project.name]));
  const linkedIds = new Set(items.map((item) => item.project_id));
  const targets = (mine.data?.items ?? []).filter((project) => !linkedIds.has(project.id) && project.role !== "viewer");

  return (
    <section className="card card-pad" aria-label="Projects">
      <h2 className="card-title">
        Projects <span className="count">{items.length}</span>
      </h2>
      <ul className="sensor-list">
        {items.map((item) => (
          <li key={item.project_id}>
            <span className="sensor-name">
              {names.get(item.project_id) ?? "a project you are not in"}
              {item.home ? null : <span className="muted sub-line">shared {formatDateTime(item.added_at)}</span>}
            </span>
            {item.home ? <span className="badge badge-accent">home</span> : null}
            {canShare && !item.home ? (
              <Button
                size="sm"
                variant="ghost"
                aria-label={`Stop sharing ${sensorName} with ${names.get(item.project_id) ?? "this project"}`}
                busy={unshare.isPending && unshare.variables === item.project_id}
                onClick={() => unshare.mutate(item.project_id, { onSuccess: () => toasts.success("No longer shared with that project") })}
              >
                Remove
              </Button>
            ) : null}
          </li>
        ))}
      </ul>
      {canShare && targets.length > 0 ? (
        <div className="bind-row">
          <Select aria-label="Project to share with" value={picked} onChange={(e) => setPicked(e.target.value)}>
            <option value="">Share with…</option>
            {targets.map((project) => (
              <option key={project.id} value={project.id}>
                {project.name}
              </option>
            ))}
          </Select>
          <Button
            size="sm"
            disabledReason={picked ? null : "Choose a project first."}
            busy={share.isPending}
            onClick={() => share.mutate(picked, { onSuccess: () => (setPicked(""), toasts.success(`${sensorName} shared`)) })}
          >
            Share
          </Button>
        </div>
      ) : null}
      {canShare && targets.length === 0 ? <p className="field-hint">You edit no other project to share it with.</p> : null}
    </section>
  );
}
