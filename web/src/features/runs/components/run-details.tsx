import { CopyButton } from "../../../components/copy-button";
import { Tags } from "../../../components/ui";
import { formatDateTime, formatDuration, formatValue } from "../../../lib/format";
import type { Run } from "../api";

function KeyValues({ title, values, empty }: { title: string; values: Record<string, unknown>; empty: string }) {
  const entries = Object.entries(values).sort(([a], [b]) => a.localeCompare(b));
  return (
    <section className="card card-pad" aria-label={title}>
      <h2 className="card-title">
        {title} <span className="count">{entries.length}</span>
      </h2>
      {entries.length === 0 ? (
        <p className="muted">{empty}</p>
      ) : (
        <table className="kv">
          <tbody>
            {entries.map(([key, value]) => (
              <tr key={key}>
                <th scope="row">{key}</th>
                <td>
                  <code>{formatValue(value)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function RunFacts({ run }: { run: Run }) {
  return (
    <section className="card card-pad facts" aria-label="Run facts">
      <dl>
        <div>
          <dt>Git SHA</dt>
          <dd>
            {run.git_sha ? (
              <span className="sha">
                <code data-testid="git-sha">{run.git_sha}</code> <CopyButton value={run.git_sha} label="Copy SHA" compact />
              </span>
            ) : (
              <span className="muted">not recorded</span>
            )}
          </dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>{formatDateTime(run.started_at)}</dd>
        </div>
        <div>
          <dt>Finished</dt>
          <dd>{formatDateTime(run.finished_at)}</dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd>{formatDuration(run.duration_seconds)}</dd>
        </div>
        <div>
          <dt>Tags</dt>
          <dd>
            <Tags tags={run.tags} />
          </dd>
        </div>
      </dl>
      {run.notes ? <p className="notes">{run.notes}</p> : null}
    </section>
  );
}

export function RunParams({ run }: { run: Run }) {
  return <KeyValues title="Parameters" values={run.params} empty="No parameters recorded." />;
}

export function RunEnv({ run }: { run: Run }) {
  return <KeyValues title="Environment" values={run.env} empty="No environment recorded." />;
}
