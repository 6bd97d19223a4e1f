export { runKeys, useCaptureSessions, useRun, useRuns, useRunSensors, type Run } from "./api";
export { CapturePanel } from "./components/capture-panel";
export { CreateRunDialog } from "./components/create-run-dialog";
export { RunEnv, RunFacts, RunParams } from "./components/run-details";
export { RunHeader } from "./components/run-header";
export { RunHistory } from "./components/run-history";
export { RunSensors } from "./components/run-sensors";
export { RunsTable } from "./components/runs-table";
export { captureStartReason, runActions, runMoveReason } from "./status";
