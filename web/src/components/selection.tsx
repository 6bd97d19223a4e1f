// Rows picked in a table for a bulk change: the set of ids, and the checkbox cells that change it.
import { useState } from "react";

export interface Selection {
  picked: ReadonlySet<string>;
  toggle: (id: string) => void;
  set: (ids: readonly string[]) => void;
}

export function useSelection(): Selection {
  const [picked, setPicked] = useState<ReadonlySet<string>>(new Set());
  return {
    picked,
    toggle: (id) => setPicked((current) => new Set(current.has(id) ? [...current].filter((one) => one !== id) : [...current, id])),
    set: (ids) => setPicked(new Set(ids)),
  };
}

/** The header cell: picks every row, or none when all are picked. */
export function SelectAllCell({ label, ids, selection }: { label: string; ids: readonly string[]; selection: Selection }) {
  const all = ids.length > 0 && ids.every((id) => selection.picked.has(id));
  return (
    <th scope="col" className="cell-check">
      <input type="checkbox" aria-label={label} checked={all} onChange={() => selection.set(all ? [] : ids)} />
    </th>
  );
}

export function SelectCell({ label, id, selection }: { label: string; id: string; selection: Selection }) {
  return (
    <td className="cell-check">
      <input type="checkbox" aria-label={label} checked={selection.picked.has(id)} onChange={() => selection.toggle(id)} />
    </td>
  );
}
