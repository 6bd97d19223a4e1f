import { Empty, Loading } from "../../../components/ui";
import { formatDateTime } from "../../../lib/format";
import { useIngestErrors } from "../api";

/** The batches telemetry ingest refused from the sensor, newest first: what the device sent
 * wrong, in the service's words. */
export function IngestErrors({ sensorId }: { sensorId: string }) {
  const journal = useIngestErrors(sensorId);
  if (journal.isPending) return <Loading />;
  if (journal.isError) return <Empty title="The ingest error journal could not be loaded." />;
  const items = journal.data.items;
  if (items.length === 0) return <p className="muted card-pad">No refused batch: everything the sensor sent was taken.</p>;
  return (
    <table className="table" aria-label="Ingest errors">
      <thead>
        <tr>
          <th scope="col">When</th>
          <th scope="col">Refused as</th>
          <th scope="col">Why</th>
          <th scope="col">Readings</th>
          <th scope="col">Batch</th>
        </tr>
      </thead>
      <tbody>
        {items.map((entry) => (
          <tr key={entry.id}>
            <td className="muted">{formatDateTime(entry.at)}</td>
            <td>
              <code>
                {entry.status} {entry.code}
              </code>
            </td>
            <td>
              {entry.detail}
              {entry.errors.slice(0, 3).map((error, index) => (
                <div key={index} className="muted">
                  <code>{error.field || "body"}</code>: {error.message}
                </div>
              ))}
              {entry.errors.length > 3 ? <div className="muted">and {entry.errors.length - 3} more</div> : null}
            </td>
            <td className="muted">
              {entry.rejected} of {entry.readings}
            </td>
            <td className="muted">{entry.batch_id ? <code>{entry.batch_id}</code> : "—"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
