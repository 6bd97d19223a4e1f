/** Status filter chips: checkboxes styled as chips, one per status, any number on. */
export function StatusChips<S extends string>({ statuses, on, onChange }: { statuses: readonly S[]; on: readonly S[]; onChange: (on: S[]) => void }) {
  const toggle = (status: S) => onChange(on.includes(status) ? on.filter((item) => item !== status) : [...on, status]);
  return (
    <fieldset className="chips">
      <legend className="sr-only">Status</legend>
      {statuses.map((status) => (
        <label key={status} className={`chip${on.includes(status) ? " chip-on" : ""}`}>
          <input type="checkbox" checked={on.includes(status)} onChange={() => toggle(status)} />
          {status.replace("_", " ")}
        </label>
      ))}
    </fieldset>
  );
}
