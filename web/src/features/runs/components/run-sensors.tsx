import { useState } from "react";

import { Button, Select, StatusBadge } from "../../../components/ui";
import { useBindSensor, useRunSensors, useUnbindSensor } from "../api";

export interface SensorChoice {
  id: string;
  name: string;
}

/** The sensors bound to a run (their readings belong to its capture sessions): bind and unbind. */
export function RunSensors({
  runId,
  canEdit,
  archived,
  choices,
}: {
  runId: string;
  canEdit: boolean;
  archived: boolean;
  choices: readonly SensorChoice[];
}) {
  const bound = useRunSensors(runId);
  const bind = useBindSensor(runId);
  const unbind = useUnbindSensor(runId);
  const [picked, setPicked] = useState("");
  const items = bound.data?.items ?? [];
  const boundIds = new Set(items.map((item) => item.sensor.id));
  const free = choices.filter((choice) => !boundIds.has(choice.id));

  return (
    <section className="card card-pad" aria-label="Bound sensors">
        <h2 className="card-title">
          Sensors <span className="count">{items.length}</span>
        </h2>
        {items.length === 0 ? <p className="muted">No sensor bound yet.</p> : null}
        <ul className="sensor-list">
          {items.map(({ sensor }) => (
            <li key={sensor.id}>
              <span className="sensor-name">{sensor.name}</span>
              <StatusBadge status={sensor.status} />
              {canEdit && !archived ? (
                <Button size="sm" variant="ghost" aria-label={`Unbind ${sensor.name}`} busy={unbind.isPending && unbind.variables === sensor.id} onClick={() => unbind.mutate(sensor.id)}>
                  Unbind
                </Button>
              ) : null}
            </li>
          ))}
        </ul>
        {canEdit && !archived && free.length === 0 && choices.length > 0 ? <p className="field-hint">Every sensor of the project is bound.</p> : null}
        {canEdit && !archived && choices.length === 0 ? <p className="field-hint">Register a sensor on the Sensors page to bind it here.</p> : null}
        {canEdit && !archived && free.length > 0 ? (
          <div className="bind-row">
            <Select aria-label="Sensor to bind" value={picked} onChange={(e) => setPicked(e.target.value)}>
              <option value="">Choose a sensor…</option>
              {free.map((choice) => (
                <option key={choice.id} value={choice.id}>
                  {choice.name}
                </option>
              ))}
            </Select>
            <Button size="sm" disabledReason={picked ? null : "Choose a sensor first."} busy={bind.isPending} onClick={() => bind.mutate(picked, { onSuccess: () => setPicked("") })}>
              Bind
            </Button>
          </div>
        ) : null}
    </section>
  );
}
