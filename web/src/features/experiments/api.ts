import { keepPreviousData, useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import type { BulkChange } from "../../components/bulk-bar";
import { api, call, type Schemas } from "../../lib/api";
import type { ExperimentStatus } from "./status";

export type Experiment = Schemas["Experiment"];

export type ExperimentSort = "-created_at" | "created_at" | "name" | "-name";

export interface ExperimentFilters {
  status: ExperimentStatus[];
  q: string;
  tags: string[];
  sort: ExperimentSort;
}

export const experimentKeys = {
  all: ["experiments"] as const,
  list: (projectId: string, filters: ExperimentFilters) => ["experiments", projectId, filters] as const,
  lists: (projectId: string) => ["experiments", projectId] as const,
  one: (experimentId: string) => ["experiment", experimentId] as const,
};

const PAGE = 50;

export function useExperiments(projectId: string, filters: ExperimentFilters) {
  return useInfiniteQuery({
    queryKey: experimentKeys.list(projectId, filters),
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) =>
      call(
        api.GET("/api/v1/experiments", {
          params: {
            query: {
              project_id: projectId,
              limit: PAGE,
              sort: filters.sort,
              ...(filters.status.length ? { status: filters.status } : {}),
              ...(filters.tags.length ? { tags: filters.tags } : {}),
              ...(filters.q ? { q: filters.q } : {}),
              ...(pageParam ? { cursor: pageParam } : {}),
            },
          },
        }),
      ),
    getNextPageParam: (page) => page.next_cursor,
    placeholderData: keepPreviousData,
  });
}

export function useExperiment(experimentId: string) {
  return useQuery({
    queryKey: experimentKeys.one(experimentId),
    queryFn: () => call(api.GET("/api/v1/experiments/{experiment_id}", { params: { path: { experiment_id: experimentId } } })),
    enabled: experimentId !== "",
    meta: { silent: true },
  });
}

export function useCreateExperiment(projectId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: Omit<Schemas["ExperimentCreate"], "project_id">) =>
      call(api.POST("/api/v1/experiments", { body: { ...body, project_id: projectId } })),
    onSuccess: (experiment) => {
      queryClient.setQueryData(experimentKeys.one(experiment.id), experiment);
      return queryClient.invalidateQueries({ queryKey: experimentKeys.lists(projectId) });
    },
  });
}

export function useUpdateExperiment(experimentId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: Schemas["ExperimentUpdate"]) =>
      call(api.PATCH("/api/v1/experiments/{experiment_id}", { params: { path: { experiment_id: experimentId } }, body })),
    onSuccess: (experiment) => {
      queryClient.setQueryData(experimentKeys.one(experiment.id), experiment);
      return queryClient.invalidateQueries({ queryKey: experimentKeys.lists(experiment.project_id) });
    },
  });
}

/** One change for many experiments, all or nothing (`experiments:batch-status`, `:bulk-tags`). */
export function useBulkExperimentChange() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ ids, change }: { ids: string[]; change: BulkChange<ExperimentStatus> }) =>
      call(
        change.kind === "status"
          ? api.POST("/api/v1/experiments:batch-status", { body: { experiment_ids: ids, status: change.status } })
          : api.POST("/api/v1/experiments:bulk-tags", { body: { experiment_ids: ids, add: change.add, remove: change.remove } }),
      ),
    meta: { silent: true },
    onSettled: () => Promise.all([queryClient.invalidateQueries({ queryKey: experimentKeys.all }), queryClient.invalidateQueries({ queryKey: ["experiment"] })]),
  });
}
