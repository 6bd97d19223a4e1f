import { useState } from "react";

import { Button, Empty, Input, Loading, StatusBadge } from "../../../components/ui";
import { formatClock, formatDateTime, formatDuration, secondsBetween } from "../../../lib/format";
import { useNow } from "../../../lib/use-now";
import { useCaptureSessions, useStartCapture, useStopCapture, type CaptureSession, type Run } from "../api";
import { captureOpen, captureStartReason } from "../status";

/** Capture control of a run: start, a running timer, stop; and every capture session of the run. */
export function CapturePanel({ run, canEdit, userName }: { run: Run; canEdit: boolean; userName: (userId: string | null) => string }) {
  const sessions = useCaptureSessions(run.id);
  const start = useStartCapture(run.id);
  const stop = useStopCapture(run.id);
  const [notes, setNotes] = useState("");
  const items = sessions.data?.items ?? [];
  const active = items.find((session) => session.status === "running") ?? null;
  const now = useNow(active !== null);
  const startReason = captureStartReason(run.status, { canEdit, captureRunning: active !== null });

  return (
    <section className="card capture" aria-label="Capture">
      <header className="capture-head">
        <div>
          <h2 className="card-title">Capture</h2>
          <p className="muted">Readings sent while capture runs belong to its session.</p>
        </div>
        {active ? (
          <div className="capture-live" role="timer" aria-live="off" aria-label="Capture time">
            <span className="rec" aria-hidden="true" />
            <span className="capture-label">Session #{active.ordinal_number}</span>
            <span className="capture-clock" data-testid="capture-timer">
              {active.started_at ? formatClock(secondsBetween(active.started_at, null, now)) : "0:00"}
            </span>
          </div>
        ) : null}
      </header>
      {!captureOpen(run.status) && !active ? (
        <p className="capture-closed muted">Capture is closed: the run is {run.status}.</p>
      ) : canEdit ? (
        <div className="capture-controls">
          {active ? (
            <>
              <Button
                variant="danger"
                busy={stop.isPending}
                onClick={() => stop.mutate({ sessionId: active.id, failed: false })}
              >
                ■ Stop capture
              </Button>
              <Button
                variant="ghost"
                disabled={stop.isPending}
                onClick={() => {
                  const reason = window.prompt("Why did this capture fail?");
                  if (reason) stop.mutate({ sessionId: active.id, failed: true, reason });
                }}
              >
                Stop as failed…
              </Button>
            </>
          ) : (
            <>
              <Input aria-label="Capture notes" placeholder="Notes for this session (optional)" value={notes} onChange={(e) => setNotes(e.target.value)} disabled={Boolean(startReason)} maxLength={4000} />
              <Button
                variant="primary"
                busy={start.isPending}
                disabledReason={startReason}
                onClick={() =>
                  start.mutate(notes.trim(), {
                    onSuccess: () => setNotes(""),
                  })
                }
              >
                ● Start capture
              </Button>
              {startReason ? <span className="reason">{startReason}</span> : null}
            </>
          )}
        </div>
      ) : null}
      <SessionsTable sessions={items} loading={sessions.isPending} now={now} userName={userName} />
    </section>
  );
}

function SessionsTable({ sessions, loading, now, userName }: { sessions: readonly CaptureSession[]; loading: boolean; now: number; userName: (userId: string | null) => string }) {
  if (loading) return <Loading />;
  if (sessions.length === 0) return <Empty title="No capture sessions yet." />;
  const newestFirst = [...sessions].sort((a, b) => b.ordinal_number - a.ordinal_number);
  return (
    <table className="table" aria-label="Capture sessions">
      <thead>
        <tr>
          <th scope="col">#</th>
          <th scope="col">Status</th>
          <th scope="col">Started</th>
          <th scope="col">Stopped</th>
          <th scope="col">Duration</th>
          <th scope="col">By</th>
          <th scope="col">Notes</th>
        </tr>
      </thead>
      <tbody>
        {newestFirst.map((session) => (
          <tr key={session.id} data-testid={`capture-session-${session.ordinal_number}`}>
            <td className="mono">{session.ordinal_number}</td>
            <td>
              <StatusBadge status={session.status} />
            </td>
            <td className="muted">{formatDateTime(session.started_at)}</td>
            <td className="muted">{formatDateTime(session.stopped_at)}</td>
            <td className="mono">{session.started_at ? formatDuration(secondsBetween(session.started_at, session.stopped_at, now)) : "—"}</td>
            <td>{userName(session.initiated_by)}</td>
            <td className="muted">{session.failure_reason ? <span className="bad-text">{session.failure_reason}</span> : session.notes || "—"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
