import { formatDuration } from "../../../lib/format";
import { useBackfill } from "./api";

const count = (value: number) => value.toLocaleString("en");

/** How far the conversion of a sensor's stored readings by a profile published for a past time
 * has come (asked again every second until it ends). */
export function BackfillProgress({ backfillId }: { backfillId: string }) {
  const backfill = useBackfill(backfillId);
  if (!backfill.data) return null;
  const { status, rows_done: done, rows_total: total, rate, eta_seconds: eta, error } = backfill.data;
  const text =
    status === "running"
      ? `Converting the stored readings again: ${count(done)} of ${count(total)}` +
        (rate ? `, ${count(Math.round(rate))} a second` : "") +
        (eta !== null ? `, ${formatDuration(eta)} left` : "")
      : status === "succeeded"
        ? `The stored readings are converted again: ${count(done)} of them.`
        : `Converting the stored readings again failed: ${error ?? "no reason given"}.`;
  return (
    <div className="backfill-progress" role="status" aria-label="Stored readings converted again" data-status={status}>
      <p>{text}</p>
      <progress max={Math.max(total, 1)} value={status === "succeeded" ? Math.max(total, 1) : done} aria-label="Readings converted" />
    </div>
  );
}
