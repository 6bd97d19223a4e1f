import { useState, type FormEvent } from "react";

import { Dialog } from "../../../components/dialog";
import { Button, Field, Select } from "../../../components/ui";
import { useRotateToken, type Sensor, type SensorWithToken } from "../api";
import { TokenReveal } from "./token-reveal";

const GRACE: readonly { seconds: number; label: string }[] = [
  { seconds: 0, label: "none: the old token stops now" },
  { seconds: 300, label: "5 minutes" },
  { seconds: 3600, label: "1 hour" },
  { seconds: 86_400, label: "1 day" },
  { seconds: 604_800, label: "7 days" },
];

/** A new token for a sensor; the old one keeps working for the grace period chosen. */
export function RotateTokenDialog({ projectId, sensor, onClose }: { projectId: string; sensor: Sensor | null; onClose: () => void }) {
  const rotate = useRotateToken(projectId);
  const [grace, setGrace] = useState(3600);
  const [rotated, setRotated] = useState<SensorWithToken | null>(null);

  function close() {
    setRotated(null);
    rotate.reset();
    onClose();
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    if (sensor) rotate.mutate({ sensorId: sensor.id, graceSeconds: grace }, { onSuccess: setRotated });
  }

  return (
    <Dialog open={sensor !== null} title={rotated ? `New token for ${rotated.name}` : `Rotate the token of ${sensor?.name ?? ""}`} onClose={close}>
      {rotated ? (
        <TokenReveal sensor={rotated} onDone={close} />
      ) : (
        <form className="form" onSubmit={submit}>
          <p className="muted">A new token is made now. Give the device time to switch over: the current token keeps working for</p>
          <Field label="Grace period">
            {(props) => (
              <Select {...props} value={grace} onChange={(e) => setGrace(Number(e.target.value))}>
                {GRACE.map((option) => (
                  <option key={option.seconds} value={option.seconds}>
                    {option.label}
                  </option>
                ))}
              </Select>
            )}
          </Field>
          <div className="form-actions">
            <Button onClick={close}>Cancel</Button>
            <Button type="submit" variant="primary" busy={rotate.isPending}>
              Rotate token
            </Button>
          </div>
        </form>
      )}
    </Dialog>
  );
}
