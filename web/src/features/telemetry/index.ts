export { sensorColor } from "./colors";
export { LivePanel, type LiveSensor } from "./components/live-panel";
export { type Marker } from "./components/monitor-chart";
export { MonitorPanel } from "./components/monitor-panel";
export { MonitorSide } from "./components/monitor-side";
export { StreamBadge } from "./components/stream-badge";
export { formatLayout, joinPanel, MAX_MONITOR_SENSORS, movePanel, parseLayout, setLayer, splitSensor, type Panel } from "./monitor-layout";
export { useLiveStream } from "./use-live-stream";
