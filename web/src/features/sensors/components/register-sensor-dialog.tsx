import { useState, type FormEvent } from "react";

import { Dialog } from "../../../components/dialog";
import { Button, Field, Input, Textarea } from "../../../components/ui";
import { fieldError } from "../../../lib/problem";
import { useRegisterSensor, type SensorWithToken } from "../api";
import { TokenReveal } from "./token-reveal";

/** Registers a sensor, then shows its token: once, with a copy button and a warning. */
export function RegisterSensorDialog({ projectId, open, onClose }: { projectId: string; open: boolean; onClose: () => void }) {
  const register = useRegisterSensor(projectId);
  const [created, setCreated] = useState<SensorWithToken | null>(null);
  const [name, setName] = useState("");
  const [type, setType] = useState("");
  const [inputUnit, setInputUnit] = useState("V");
  const [displayUnit, setDisplayUnit] = useState("");
  const [description, setDescription] = useState("");
  const [slope, setSlope] = useState("");
  const [offset, setOffset] = useState("0");

  function close() {
    setCreated(null);
    register.reset();
    onClose();
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    const a = Number(slope);
    const b = Number(offset || "0");
    register.mutate(
      {
        name: name.trim(),
        type: type.trim(),
        input_unit: inputUnit.trim(),
        display_unit: displayUnit.trim(),
        description,
        linear: slope.trim() !== "" && Number.isFinite(a) && Number.isFinite(b) ? { a, b } : null,
      },
      {
        onSuccess: (sensor) => {
          setCreated(sensor);
          setName("");
          setType("");
          setDescription("");
          setSlope("");
          setOffset("0");
        },
      },
    );
  }

  if (created) {
    return (
      <Dialog open={open} title={`${created.name} is registered`} onClose={close}>
        <TokenReveal sensor={created} onDone={close} />
      </Dialog>
    );
  }

  const error = register.error;
  return (
    <Dialog open={open} title="Register a sensor" onClose={close}>
      <form className="form" onSubmit={submit}>
        <div className="form-row">
          <Field label="Name" error={fieldError(error, "name")}>
            {(props) => <Input {...props} name="name" required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} autoFocus placeholder="Pitot probe 1" />}
          </Field>
          <Field label="Type" error={fieldError(error, "type")}>
            {(props) => <Input {...props} name="type" required maxLength={100} value={type} onChange={(e) => setType(e.target.value)} placeholder="pressure" />}
          </Field>
        </div>
        <div className="form-row">
          <Field label="Input unit" hint="What the device sends." error={fieldError(error, "input_unit")}>
            {(props) => <Input {...props} name="input_unit" required maxLength={50} value={inputUnit} onChange={(e) => setInputUnit(e.target.value)} />}
          </Field>
          <Field label="Display unit" hint="After conversion." error={fieldError(error, "display_unit")}>
            {(props) => <Input {...props} name="display_unit" required maxLength={50} value={displayUnit} onChange={(e) => setDisplayUnit(e.target.value)} placeholder="Pa" />}
          </Field>
        </div>
        <fieldset className="fieldset">
          <legend>Conversion (optional): physical = a · raw + b</legend>
          <div className="form-row">
            <Field label="Slope a" error={fieldError(error, "a")}>
              {(props) => <Input {...props} name="slope" inputMode="decimal" value={slope} onChange={(e) => setSlope(e.target.value)} placeholder="e.g. 250" />}
            </Field>
            <Field label="Offset b" error={fieldError(error, "b")}>
              {(props) => <Input {...props} name="offset" inputMode="decimal" value={offset} onChange={(e) => setOffset(e.target.value)} />}
            </Field>
          </div>
        </fieldset>
        <Field label="Description" error={fieldError(error, "description")}>
          {(props) => <Textarea {...props} name="description" rows={2} value={description} onChange={(e) => setDescription(e.target.value)} />}
        </Field>
        <div className="form-actions">
          <Button onClick={close}>Cancel</Button>
          <Button type="submit" variant="primary" busy={register.isPending}>
            Register sensor
          </Button>
        </div>
      </form>
    </Dialog>
  );
}
