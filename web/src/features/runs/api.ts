import { useMutation, useQuery, useQueryClient, type QueryClient } from "@tanstack/react-query";

import type { BulkChange } from "../../components/bulk-bar";
import { api, call, type Schemas } from "../../lib/api";
import type { RunStatus } from "./status";

export type Run = Schemas["Run"];
export type CaptureSession = Schemas["CaptureSession"];
export type BoundSensor = Schemas["BoundSensor"];

export const runKeys = {
  lists: ["runs"] as const,
  list: (experimentId: string, status?: RunStatus) => ["runs", { experimentId, status }] as const,
  one: (runId: string) => ["run", runId] as const,
  captures: (runId: string) => ["run", runId, "capture-sessions"] as const,
  sensors: (runId: string) => ["run", runId, "sensors"] as const,
  events: (runId: string) => ["run", runId, "events"] as const,
};

const PAGE = 200;

/** The run's sessions, sensors and events: each change of the run is an event, some change more. */
function refreshRunParts(queryClient: QueryClient, runId: string) {
  return queryClient.invalidateQueries({ queryKey: runKeys.one(runId), predicate: (query) => query.queryKey.length > 2 });
}

export function useRuns(experimentId: string, status?: RunStatus) {
  return useQuery({
    queryKey: runKeys.list(experimentId, status),
    queryFn: () =>
      call(
        api.GET("/api/v1/runs", {
          params: { query: { experiment_id: experimentId, limit: status ? 1 : PAGE, ...(status ? { status: [status] } : {}) } },
        }),
      ),
  });
}

export function useRun(runId: string) {
  return useQuery({
    queryKey: runKeys.one(runId),
    queryFn: () => call(api.GET("/api/v1/runs/{run_id}", { params: { path: { run_id: runId } } })),
    enabled: runId !== "",
    meta: { silent: true },
  });
}

export function useCreateRun(experimentId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: Schemas["RunCreate"]) =>
      call(api.POST("/api/v1/experiments/{experiment_id}/runs", { params: { path: { experiment_id: experimentId } }, body })),
    onSuccess: (run) => {
      queryClient.setQueryData(runKeys.one(run.id), run);
      return queryClient.invalidateQueries({ queryKey: runKeys.lists });
    },
  });
}

export function useUpdateRun(runId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: Schemas["RunUpdate"]) => call(api.PATCH("/api/v1/runs/{run_id}", { params: { path: { run_id: runId } }, body })),
    onSuccess: (run) => {
      queryClient.setQueryData(runKeys.one(run.id), run);
      // Archiving a run archives its capture sessions; every change is a new event.
      void refreshRunParts(queryClient, run.id);
      return queryClient.invalidateQueries({ queryKey: runKeys.lists });
    },
  });
}

export function useCaptureSessions(runId: string) {
  return useQuery({
    queryKey: runKeys.captures(runId),
    queryFn: () =>
      call(api.GET("/api/v1/runs/{run_id}/capture-sessions", { params: { path: { run_id: runId }, query: { limit: 500 } } })),
    enabled: runId !== "",
  });
}

export function useStartCapture(runId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (notes: string) =>
      call(api.POST("/api/v1/runs/{run_id}/capture-sessions", { params: { path: { run_id: runId } }, body: notes ? { notes } : {} })),
    onSuccess: () => refreshRunParts(queryClient, runId),
  });
}

export function useStopCapture(runId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ sessionId, failed, reason }: { sessionId: string; failed: boolean; reason?: string }) =>
      call(
        api.POST("/api/v1/runs/{run_id}/capture-sessions/{session_id}/stop", {
          params: { path: { run_id: runId, session_id: sessionId } },
          body: failed ? { status: "failed", reason: reason || "Stopped as failed." } : {},
        }),
      ),
    onSettled: () => refreshRunParts(queryClient, runId),
  });
}

export function useRunSensors(runId: string) {
  return useQuery({
    queryKey: runKeys.sensors(runId),
    queryFn: () => call(api.GET("/api/v1/runs/{run_id}/sensors", { params: { path: { run_id: runId }, query: { limit: 500 } } })),
    // Each bound sensor's liveness, as the service computes it at each read.
    refetchInterval: 5_000,
    enabled: runId !== "",
  });
}

export function useBindSensor(runId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (sensorId: string) =>
      call(api.POST("/api/v1/runs/{run_id}/sensors", { params: { path: { run_id: runId } }, body: { sensor_id: sensorId } })),
    onSettled: () => refreshRunParts(queryClient, runId),
  });
}

export function useUnbindSensor(runId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (sensorId: string) =>
      call(api.DELETE("/api/v1/runs/{run_id}/sensors/{sensor_id}", { params: { path: { run_id: runId, sensor_id: sensorId } } })),
    onSettled: () => refreshRunParts(queryClient, runId),
  });
}

export function useRunEvents(runId: string) {
  return useQuery({
    queryKey: runKeys.events(runId),
    queryFn: () => call(api.GET("/api/v1/runs/{run_id}/events", { params: { path: { run_id: runId }, query: { limit: 500 } } })),
  });
}

/** One change for many runs, all or nothing (`runs:batch-status`, `runs:bulk-tags`). */
export function useBulkRunChange() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ ids, change }: { ids: string[]; change: BulkChange<RunStatus> }) =>
      call(
        change.kind === "status"
          ? api.POST("/api/v1/runs:batch-status", { body: { run_ids: ids, status: change.status } })
          : api.POST("/api/v1/runs:bulk-tags", { body: { run_ids: ids, add: change.add, remove: change.remove } }),
      ),
    meta: { silent: true },
    onSettled: () => queryClient.invalidateQueries({ queryKey: runKeys.lists }),
  });
}
