import { useState } from "react";

import { isApiError } from "../lib/api";
import { bulkOutcomes, summary, type BulkItem, type ItemOutcome } from "../lib/bulk";
import { toasts } from "../lib/toast-store";
import { Button, Input, parseTags, Select } from "./ui";

export type BulkChange<S extends string> = { kind: "status"; status: S } | { kind: "tags"; add: string[]; remove: string[] };

/** Status and tags for the selected items (runs, experiments) at once, through the API's
 * all-or-nothing batch routes; a refusal is shown item by item. */
export function BulkBar<S extends string>({
  noun,
  selected,
  statuses,
  apply,
  busy,
  onDone,
}: {
  noun: string;
  selected: readonly BulkItem[];
  statuses: readonly { status: S; label: string }[];
  apply: (ids: string[], change: BulkChange<S>) => Promise<unknown>;
  busy: boolean;
  onDone: () => void;
}) {
  const [status, setStatus] = useState<S | "">("");
  const [tags, setTags] = useState("");
  const [outcomes, setOutcomes] = useState<ItemOutcome[] | null>(null);

  async function run(change: BulkChange<S>) {
    try {
      await apply(
        selected.map((item) => item.id),
        change,
      );
      toasts.success(summary(bulkOutcomes(selected, null), noun));
      setOutcomes(null);
      setTags("");
      onDone();
    } catch (error) {
      if (isApiError(error, 409) && error.itemErrors.length > 0) setOutcomes(bulkOutcomes(selected, error));
      else toasts.error(error);
    }
  }

  const tagList = parseTags(tags);
  return (
    <div className="bulk-bar" role="region" aria-label={`Selected ${noun}s`}>
      <div className="bulk-row">
        <strong>{selected.length} selected</strong>
        <Select aria-label="New status" value={status} onChange={(e) => setStatus(e.target.value as S | "")}>
          <option value="">Status…</option>
          {statuses.map((option) => (
            <option key={option.status} value={option.status}>
              {option.label}
            </option>
          ))}
        </Select>
        <Button size="sm" busy={busy} disabledReason={status ? null : "Choose a status first."} onClick={() => status && void run({ kind: "status", status })}>
          Apply status
        </Button>
        <Input aria-label="Tags to add or remove" placeholder="tags, comma separated" value={tags} onChange={(e) => setTags(e.target.value)} />
        <Button size="sm" busy={busy} disabledReason={tagList.length ? null : "Type tags first."} onClick={() => void run({ kind: "tags", add: tagList, remove: [] })}>
          Add tags
        </Button>
        <Button size="sm" busy={busy} disabledReason={tagList.length ? null : "Type tags first."} onClick={() => void run({ kind: "tags", add: [], remove: tagList })}>
          Remove tags
        </Button>
      </div>
      {outcomes ? (
        <div className="bulk-results" role="status">
          <p>{summary(outcomes, noun)}</p>
          <ul>
            {outcomes
              .filter((item) => item.reason !== null)
              .map((item) => (
                <li key={item.id} data-testid={`bulk-refused-${item.name}`}>
                  <strong>{item.name}</strong>: {item.reason}
                </li>
              ))}
          </ul>
        </div>
      ) : null}
    </div>
  );
}
