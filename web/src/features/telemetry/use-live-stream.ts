import { useEffect, useMemo, useSyncExternalStore } from "react";

import { LiveStream, streamUrl, type StreamState } from "./live-stream";

/** One live stream for these sensors while the component is mounted (a new one when they change). */
export function useLiveStream(sensorIds: readonly string[]): { stream: LiveStream; state: StreamState } {
  const key = [...sensorIds].sort().join(",");
  const stream = useMemo(() => new LiveStream(key ? key.split(",") : []), [key]);
  useEffect(() => {
    if (stream.series.size === 0) return;
    stream.open(streamUrl(window.location.origin, [...stream.series.keys()]));
    return () => stream.close();
  }, [stream]);
  const state = useSyncExternalStore(stream.subscribe, stream.snapshot);
  return { stream, state };
}
