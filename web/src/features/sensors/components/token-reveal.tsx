import { CopyButton } from "../../../components/copy-button";
import { Button, Field, Input } from "../../../components/ui";
import type { SensorWithToken } from "../api";

/** A sensor's new token, shown this once, with a copy button and the warning that goes with it. */
export function TokenReveal({ sensor, onDone }: { sensor: SensorWithToken; onDone: () => void }) {
  return (
    <div className="form">
      <div className="callout callout-warn" role="note">
        <strong>Copy the token now.</strong> It will not be shown again: ETP keeps only its digest. If it is lost, rotate the
        sensor's token.
      </div>
      <Field label="Sensor id">{(props) => <Input {...props} readOnly value={sensor.id} className="input mono" />}</Field>
      <div className="field">
        <span className="field-label">Token</span>
        <div className="token-row">
          <code className="token" data-testid="sensor-token">
            {sensor.token}
          </code>
          <CopyButton value={sensor.token ?? ""} label="Copy token" />
        </div>
        <p className="field-hint">
          The device sends it as <code>Authorization: Bearer …</code> to <code>POST /api/v1/telemetry</code>.
        </p>
      </div>
      <div className="form-actions">
        <Button variant="primary" onClick={onDone}>
          I have stored the token
        </Button>
      </div>
    </div>
  );
}
