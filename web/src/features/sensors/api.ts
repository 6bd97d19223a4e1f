import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, call, type Schemas } from "../../lib/api";
import { activityWindow, perMinute, type SensorFilters } from "./filters";

export type Sensor = Schemas["Sensor"];
export type SensorWithToken = Schemas["SensorWithToken"];

export const sensorKeys = {
  list: (projectId: string) => ["sensors", projectId] as const,
  one: (sensorId: string) => ["sensors", "one", sensorId] as const,
  projects: (sensorId: string) => ["sensors", "one", sensorId, "projects"] as const,
  ingestErrors: (sensorId: string) => ["sensors", "one", sensorId, "ingest-errors"] as const,
};

// Liveness is computed by the service at each read: re-read often enough to see a sensor go quiet.
export const LIVENESS_REFRESH_MS = 5_000;

export function useSensors(projectId: string, filters: SensorFilters = NO_FILTERS) {
  return useQuery({
    queryKey: [...sensorKeys.list(projectId), filters],
    queryFn: () =>
      call(
        api.GET("/api/v1/sensors", {
          params: {
            query: {
              project_id: projectId,
              limit: 500,
              sort: "name",
              ...(filters.status.length ? { status: filters.status } : {}),
              ...(filters.type ? { type: [filters.type] } : {}),
              ...(filters.q ? { q: filters.q } : {}),
            },
          },
        }),
      ),
    refetchInterval: LIVENESS_REFRESH_MS,
    placeholderData: keepPreviousData,
  });
}

const NO_FILTERS: SensorFilters = { status: [], type: "", q: "" };
const ACTIVITY_REFRESH_MS = 60_000;
const IDS_PER_CALL = 20; // the aggregate route's limit

/** Readings per minute of each sensor over the last hour (its heartbeat, drawn as a sparkline). */
export function useActivity(sensorIds: readonly string[]) {
  return useQuery({
    queryKey: ["sensors", "activity", [...sensorIds].sort()],
    queryFn: async () => {
      const window = activityWindow(Date.now());
      const chunks = Array.from({ length: Math.ceil(sensorIds.length / IDS_PER_CALL) }, (_, i) => sensorIds.slice(i * IDS_PER_CALL, (i + 1) * IDS_PER_CALL));
      const answers = await Promise.all(
        chunks.map((ids) =>
          call(api.GET("/api/v1/telemetry/aggregate", { params: { query: { sensor_id: ids, from: window.from, to: window.to, bucket: "1m", layer: "raw" } } })),
        ),
      );
      return perMinute(
        answers.flatMap((answer) => answer.items),
        window.starts,
      );
    },
    enabled: sensorIds.length > 0,
    refetchInterval: ACTIVITY_REFRESH_MS,
    meta: { silent: true },
  });
}

export function useSensor(sensorId: string) {
  return useQuery({
    queryKey: sensorKeys.one(sensorId),
    queryFn: () => call(api.GET("/api/v1/sensors/{sensor_id}", { params: { path: { sensor_id: sensorId } } })),
    refetchInterval: LIVENESS_REFRESH_MS,
    meta: { silent: true },
  });
}

export function useSensorProjects(sensorId: string) {
  return useQuery({
    queryKey: sensorKeys.projects(sensorId),
    queryFn: () => call(api.GET("/api/v1/sensors/{sensor_id}/projects", { params: { path: { sensor_id: sensorId } } })),
  });
}

export function useShareSensor(sensorId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (projectId: string) =>
      call(api.POST("/api/v1/sensors/{sensor_id}/projects", { params: { path: { sensor_id: sensorId } }, body: { project_id: projectId } })),
    onSettled: () => queryClient.invalidateQueries({ queryKey: sensorKeys.projects(sensorId) }),
  });
}

export function useUnshareSensor(sensorId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (projectId: string) =>
      call(api.DELETE("/api/v1/sensors/{sensor_id}/projects/{project_id}", { params: { path: { sensor_id: sensorId, project_id: projectId } } })),
    onSettled: () => queryClient.invalidateQueries({ queryKey: sensorKeys.projects(sensorId) }),
  });
}

// Refused batches appear as the device sends them: re-read while the page is open.
const JOURNAL_REFRESH_MS = 10_000;

export function useIngestErrors(sensorId: string) {
  return useQuery({
    queryKey: sensorKeys.ingestErrors(sensorId),
    queryFn: () => call(api.GET("/api/v1/sensors/{sensor_id}/ingest-errors", { params: { path: { sensor_id: sensorId }, query: { limit: 50 } } })),
    refetchInterval: JOURNAL_REFRESH_MS,
  });
}

export interface SensorDraft {
  name: string;
  type: string;
  input_unit: string;
  display_unit: string;
  description: string;
  /** A first linear profile (physical = a·raw + b), published at once; null for none. */
  linear: { a: number; b: number } | null;
}

export function useRegisterSensor(projectId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ linear, ...draft }: SensorDraft) =>
      call(
        api.POST("/api/v1/sensors", {
          body: {
            ...draft,
            project_id: projectId,
            conversion_profile: linear ? { version: "v1", kind: "linear", payload: linear } : null,
          },
        }),
      ),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: sensorKeys.list(projectId) }),
  });
}

export function useRotateToken(projectId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ sensorId, graceSeconds }: { sensorId: string; graceSeconds: number }) =>
      call(
        api.POST("/api/v1/sensors/{sensor_id}/rotate-token", {
          params: { path: { sensor_id: sensorId } },
          body: { grace_seconds: graceSeconds },
        }),
      ),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: sensorKeys.list(projectId) }),
  });
}

export function useRevokeToken(projectId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (sensorId: string) => call(api.POST("/api/v1/sensors/{sensor_id}/revoke-token", { params: { path: { sensor_id: sensorId } }, body: {} })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: sensorKeys.list(projectId) }),
  });
}
