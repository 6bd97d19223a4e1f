import type { LiveStream, StreamState } from "../live-stream";

const STATE_LABEL = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…", closed: "closed" } as const;

/** The live stream's state, with why it ended when the service ended it. */
export function StreamBadge({ stream, state }: { stream: LiveStream; state: StreamState }) {
  return (
    <span className={`stream-state stream-${state}`} data-testid="stream-state">
      <span className="dot" aria-hidden="true" /> {STATE_LABEL[state]}
      {stream.endReason && state !== "live" ? ` (${stream.endReason.replace("_", " ")})` : ""}
    </span>
  );
}
