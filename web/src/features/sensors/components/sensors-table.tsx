import { useState, type ReactNode } from "react";
import { Link } from "react-router";

import { Button, Empty, Loading, StatusBadge } from "../../../components/ui";
import { formatDateTime, relativeTime } from "../../../lib/format";
import { toasts } from "../../../lib/toast-store";
import { Sparkline } from "../../../components/sparkline";
import { useActivity, useRevokeToken, useSensors, type Sensor } from "../api";
import type { SensorFilters } from "../filters";
import { RotateTokenDialog } from "./rotate-token-dialog";

/** The project's sensors with their liveness; owners rotate and revoke the tokens of the sensors
 * whose home project this is. */
export function SensorsTable({
  projectId,
  filters,
  canManage,
  sensorPath,
  emptyAction,
}: {
  projectId: string;
  filters: SensorFilters;
  canManage: boolean;
  sensorPath: (sensorId: string) => string;
  emptyAction?: ReactNode;
}) {
  const sensors = useSensors(projectId, filters);
  const activity = useActivity((sensors.data?.items ?? []).map((sensor) => sensor.id));
  const revoke = useRevokeToken(projectId);
  const [rotating, setRotating] = useState<Sensor | null>(null);
  if (sensors.isPending) return <Loading />;
  if (sensors.isError) return <Empty title="Sensors could not be loaded." />;
  const items = sensors.data.items;
  if (items.length === 0 && (filters.status.length || filters.type || filters.q)) return <Empty title="No sensor matches these filters." />;
  if (items.length === 0) {
    return (
      <Empty title="No sensors yet">
        <p className="muted">Register a sensor to get its token; the device sends readings with it.</p>
        {emptyAction}
      </Empty>
    );
  }
  return (
    <div className="card">
      <table className="table" aria-label="Sensors">
        <thead>
          <tr>
            <th scope="col">Sensor</th>
            <th scope="col">Status</th>
            <th scope="col">Type</th>
            <th scope="col">Units</th>
            <th scope="col">Last heard</th>
            <th scope="col">Last hour</th>
            <th scope="col">Token</th>
            {canManage ? (
              <th scope="col">
                <span className="sr-only">Token actions</span>
              </th>
            ) : null}
          </tr>
        </thead>
        <tbody>
          {items.map((sensor) => (
            <tr key={sensor.id} data-testid={`sensor-${sensor.name}`}>
              <td className="cell-main">
                <Link to={sensorPath(sensor.id)}>
                  <strong>{sensor.name}</strong>
                </Link>
                {sensor.description ? <div className="muted clamp-1">{sensor.description}</div> : null}
                {sensor.project_id !== projectId ? <div className="muted">shared from another project</div> : null}
              </td>
              <td>
                <StatusBadge status={sensor.status} />
              </td>
              <td>{sensor.type}</td>
              <td className="muted">
                {sensor.input_unit} → {sensor.display_unit}
                {sensor.active_profile_id ? "" : " (no profile)"}
                {sensor.channels.length > 0 ? (
                  <div className="clamp-1" data-testid="sensor-channels">
                    {sensor.channels.map((channel) => (channel.unit ? `${channel.name} (${channel.unit})` : channel.name)).join(", ")}
                  </div>
                ) : null}
              </td>
              <td className="muted" title={formatDateTime(sensor.last_heartbeat)}>
                {sensor.last_heartbeat ? relativeTime(sensor.last_heartbeat) : "never"}
              </td>
              <td>
                <Activity counts={activity.data?.get(sensor.id)} />
              </td>
              <td>
                {sensor.token_preview ? <code>{sensor.token_preview}</code> : <span className="muted">revoked</span>}
                {sensor.grace_tokens.map((grace) => (
                  <div key={grace.token_preview} className="muted grace">
                    <code>{grace.token_preview}</code> until {formatDateTime(grace.expires_at)}
                  </div>
                ))}
              </td>
              {canManage ? (
                <td className="cell-actions">
                  {sensor.project_id === projectId ? (
                    <>
                      <Button size="sm" variant="ghost" aria-label={`Rotate the token of ${sensor.name}`} onClick={() => setRotating(sensor)}>
                        Rotate
                      </Button>
                      <Button
                        size="sm"
                        variant="ghost"
                        aria-label={`Revoke the tokens of ${sensor.name}`}
                        disabledReason={sensor.token_preview || sensor.grace_tokens.length ? null : "No token to revoke."}
                        onClick={() => {
                          if (window.confirm(`Revoke every token of ${sensor.name}? It can send nothing until its token is rotated.`)) {
                            revoke.mutate(sensor.id, { onSuccess: () => toasts.success(`Tokens of ${sensor.name} revoked`) });
                          }
                        }}
                      >
                        Revoke
                      </Button>
                    </>
                  ) : null}
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
      <RotateTokenDialog projectId={projectId} sensor={rotating} onClose={() => setRotating(null)} />
    </div>
  );
}

function Activity({ counts }: { counts: readonly number[] | undefined }) {
  if (!counts) return <span className="muted">—</span>;
  const total = counts.reduce((sum, n) => sum + n, 0);
  return <Sparkline values={counts} label={`${total} readings in the last hour, per minute`} />;
}
