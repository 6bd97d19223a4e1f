import { useMemo, useState, type FormEvent } from "react";

import { Dialog } from "../../../components/dialog";
import { Button, Field, Input, Select, Textarea } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { useDebounced } from "../../../lib/use-debounced";
import { toasts } from "../../../lib/toast-store";
import { useCreateProfile, usePreview } from "./api";
import { EMPTY_FORM, parseNumbers, payloadOf, type ProfileForm, type ProfileKind } from "./draft";

const KINDS: readonly { kind: ProfileKind; label: string }[] = [
  { kind: "linear", label: "Linear: a·x + b" },
  { kind: "polynomial", label: "Polynomial: c0 + c1·x + … + c5·x⁵" },
  { kind: "table", label: "Calibration table (piecewise linear)" },
];

type Start = "draft" | "publish" | "schedule" | "recompute";

const STARTS: readonly (readonly [Start, string])[] = [
  ["publish", "Publish now: readings from now on are converted with it"],
  ["schedule", "Schedule: it takes over at a future time"],
  ["recompute", "Publish from a past time: the readings stored since then are converted again"],
  ["draft", "Keep as a draft"],
];

/** A new conversion profile: its formula, a preview on sample raw values as it is typed, and
 * whether it starts now, later, from a past time (owners: the stored readings since then are
 * converted again, `onRecomputing` gets the backfill) or stays a draft. */
export function ProfileDialog({
  sensorId,
  units,
  open,
  onClose,
  canRecompute = false,
  onRecomputing,
}: {
  sensorId: string;
  units: { input: string; display: string };
  open: boolean;
  onClose: () => void;
  canRecompute?: boolean;
  onRecomputing?: (backfillId: string) => void;
}) {
  const create = useCreateProfile(sensorId);
  const [version, setVersion] = useState("");
  const [description, setDescription] = useState("");
  const [form, setForm] = useState<ProfileForm>(EMPTY_FORM);
  const [samples, setSamples] = useState("0, 0.5, 1, 2");
  const [start, setStart] = useState<Start>("publish");
  const [scheduleAt, setScheduleAt] = useState("");

  const parsed = payloadOf(form);
  const rawValues = useMemo(() => (parseNumbers(samples) ?? []).slice(0, 20), [samples]);
  const settled = useDebounced({ conversion: parsed.conversion, rawValues }, 250);
  const preview = usePreview(sensorId, settled.conversion, settled.rawValues);
  const set = (change: Partial<ProfileForm>) => setForm((current) => ({ ...current, ...change }));

  function close() {
    create.reset();
    setVersion("");
    setDescription("");
    setForm(EMPTY_FORM);
    onClose();
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    if (parsed.conversion === null) return;
    const at = () => new Date(scheduleAt).toISOString();
    const startWith = start === "draft" ? null : start === "publish" ? { publish: true as const } : start === "schedule" ? { scheduleAt: at() } : { recomputeFrom: at() };
    create.mutate(
      { ...parsed.conversion, version: version.trim(), description, start: startWith },
      {
        onSuccess: (profile) => {
          if ("backfill_id" in profile && profile.backfill_id) {
            toasts.success(`Profile ${profile.version} published from ${formatDateTime(profile.valid_from)}`);
            onRecomputing?.(profile.backfill_id);
          } else {
            toasts.success(`Profile ${profile.version} ${profile.status === "draft" ? "saved as a draft" : profile.status}`);
          }
          close();
        },
      },
    );
  }

  const timed = start === "schedule" || start === "recompute";
  const blocked = !version.trim() ? "Give the profile a version label." : parsed.error ?? (timed && !scheduleAt ? "Choose when it starts." : null);
  return (
    <Dialog open={open} title="New conversion profile" onClose={close} wide>
      <form className="form" onSubmit={submit}>
        <div className="two-col">
          <Field label="Version" hint="A label unique among this sensor's profiles, e.g. cal-2026-12.">
            {(props) => <Input {...props} value={version} maxLength={64} required onChange={(e) => setVersion(e.target.value)} />}
          </Field>
          <Field label="Kind">
            {(props) => (
              <Select {...props} value={form.kind} onChange={(e) => set({ kind: e.target.value as ProfileKind })}>
                {KINDS.map(({ kind, label }) => (
                  <option key={kind} value={kind}>
                    {label}
                  </option>
                ))}
              </Select>
            )}
          </Field>
        </div>
        <KindFields form={form} set={set} units={units} />
        {parsed.error ? (
          <p className="field-error" role="alert">
            {parsed.error}
          </p>
        ) : null}
        <Field label="Description">{(props) => <Textarea {...props} rows={2} value={description} onChange={(e) => setDescription(e.target.value)} />}</Field>
        <fieldset className="fieldset">
          <legend>Preview</legend>
          <Field label={`Sample raw values (${units.input})`} hint="Up to 20 numbers, separated by commas or spaces.">
            {(props) => <Input {...props} value={samples} onChange={(e) => setSamples(e.target.value)} />}
          </Field>
          <table className="table table-compact" aria-label="Preview">
            <thead>
              <tr>
                <th scope="col">Raw ({units.input})</th>
                <th scope="col">Physical ({units.display})</th>
              </tr>
            </thead>
            <tbody>
              {(parsed.conversion ? (preview.data?.items ?? []) : []).map((point, index) => (
                <tr key={index}>
                  <td>{point.raw_value}</td>
                  <td>{point.physical_value ?? <span className="field-error">{point.error}</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </fieldset>
        <fieldset className="fieldset choices">
          <legend>Start</legend>
          {STARTS.filter(([value]) => value !== "recompute" || canRecompute).map(([value, label]) => (
            <label key={value} className="choice">
              <input type="radio" name="start" value={value} checked={start === value} onChange={() => setStart(value)} /> {label}
            </label>
          ))}
          {timed ? (
            <Field label="Valid from (your local time)" hint={start === "recompute" ? "The profile in force then ends there; the readings since are converted with this one." : undefined}>
              {(props) => <Input {...props} type="datetime-local" step={1} value={scheduleAt} onChange={(e) => setScheduleAt(e.target.value)} />}
            </Field>
          ) : null}
        </fieldset>
        <div className="form-actions">
          <Button onClick={close}>Cancel</Button>
          <Button type="submit" variant="primary" busy={create.isPending} disabledReason={blocked}>
            Create profile
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

function KindFields({ form, set, units }: { form: ProfileForm; set: (change: Partial<ProfileForm>) => void; units: { input: string; display: string } }) {
  if (form.kind === "linear") {
    return (
      <div className="two-col">
        <Field label={`Slope a (${units.display} per ${units.input})`}>{(props) => <Input {...props} inputMode="decimal" value={form.a} onChange={(e) => set({ a: e.target.value })} />}</Field>
        <Field label={`Offset b (${units.display})`}>{(props) => <Input {...props} inputMode="decimal" value={form.b} onChange={(e) => set({ b: e.target.value })} />}</Field>
      </div>
    );
  }
  if (form.kind === "polynomial") {
    return (
      <Field label="Coefficients c0, c1, …" hint="Lowest power first, separated by commas; degree 5 at most.">
        {(props) => <Input {...props} value={form.coefficients} onChange={(e) => set({ coefficients: e.target.value })} />}
      </Field>
    );
  }
  return (
    <>
      <Field label={`Calibration points: raw (${units.input}), physical (${units.display})`} hint="One pair per line, raw values growing.">
        {(props) => <Textarea {...props} rows={5} className="input textarea mono" value={form.points} onChange={(e) => set({ points: e.target.value })} />}
      </Field>
      <label className="choice">
        <input type="checkbox" checked={form.extrapolate} onChange={(e) => set({ extrapolate: e.target.checked })} /> Extrapolate outside the table (else clamp to its first and last values)
      </label>
    </>
  );
}
