import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, call, type Schemas } from "../../lib/api";

export type Project = Schemas["ProjectOut"];
export type Member = Schemas["MemberOut"];
export type Role = Schemas["Role"];

export const projectKeys = {
  all: ["projects"] as const,
  one: (projectId: string) => ["projects", projectId] as const,
  members: (projectId: string) => ["projects", projectId, "members"] as const,
};

const PAGE_LIMIT = 500;

export function useProjects() {
  return useQuery({
    queryKey: projectKeys.all,
    queryFn: () => call(api.GET("/api/v1/projects", { params: { query: { limit: PAGE_LIMIT } } })),
  });
}

export function useProject(projectId: string) {
  return useQuery({
    queryKey: projectKeys.one(projectId),
    queryFn: () => call(api.GET("/api/v1/projects/{project_id}", { params: { path: { project_id: projectId } } })),
    meta: { silent: true },
  });
}

export function useCreateProject() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: Schemas["ProjectCreate"]) => call(api.POST("/api/v1/projects", { body })),
    onSuccess: (project) => {
      queryClient.setQueryData(projectKeys.one(project.id), project);
      return queryClient.invalidateQueries({ queryKey: projectKeys.all, exact: true });
    },
  });
}

export function useMembers(projectId: string) {
  return useQuery({
    queryKey: projectKeys.members(projectId),
    queryFn: () =>
      call(api.GET("/api/v1/projects/{project_id}/members", { params: { path: { project_id: projectId }, query: { limit: PAGE_LIMIT } } })),
  });
}

function useMembersChanged(projectId: string) {
  const queryClient = useQueryClient();
  return () => queryClient.invalidateQueries({ queryKey: projectKeys.one(projectId) });
}

export function useAddMember(projectId: string) {
  const changed = useMembersChanged(projectId);
  return useMutation({
    mutationFn: (body: { username: string; role: Role }) =>
      call(api.POST("/api/v1/projects/{project_id}/members", { params: { path: { project_id: projectId } }, body })),
    onSuccess: changed,
  });
}

export function useUpdateMember(projectId: string) {
  const changed = useMembersChanged(projectId);
  return useMutation({
    mutationFn: ({ userId, role }: { userId: string; role: Role }) =>
      call(
        api.PATCH("/api/v1/projects/{project_id}/members/{user_id}", {
          params: { path: { project_id: projectId, user_id: userId } },
          body: { role },
        }),
      ),
    onSuccess: changed,
  });
}

export function useRemoveMember(projectId: string) {
  const changed = useMembersChanged(projectId);
  return useMutation({
    mutationFn: (userId: string) =>
      call(api.DELETE("/api/v1/projects/{project_id}/members/{user_id}", { params: { path: { project_id: projectId, user_id: userId } } })),
    onSuccess: changed,
  });
}

/** What a role may do, as the services decide it (DESIGN: viewer reads, editor changes, owner manages). */
export function permissions(role: Role | undefined) {
  return {
    canEdit: role === "owner" || role === "editor",
    canManage: role === "owner",
  };
}
