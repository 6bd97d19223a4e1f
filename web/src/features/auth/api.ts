import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, call, isApiError, type Schemas } from "../../lib/api";

export type Me = Schemas["GatewayMeOut"];

export const meKey = ["auth", "me"] as const;

/** The signed-in user, or null when there is no session (the gateway answered 401). */
export function useMe() {
  return useQuery({
    queryKey: meKey,
    queryFn: async (): Promise<Me | null> => {
      try {
        return await call(api.GET("/auth/me"));
      } catch (error) {
        if (isApiError(error, 401)) return null;
        throw error;
      }
    },
    staleTime: 60_000,
    retry: false,
  });
}

export function useSignIn() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: Schemas["LoginIn"]) => call(api.POST("/auth/login", { body })),
    onSuccess: (me) => {
      queryClient.clear();
      queryClient.setQueryData(meKey, me);
    },
  });
}

export function useRegister() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: Schemas["RegisterIn"]) => {
      await call(api.POST("/api/v1/auth/register", { body }));
      return call(api.POST("/auth/login", { body: { username: body.username, password: body.password } }));
    },
    onSuccess: (me) => {
      queryClient.clear();
      queryClient.setQueryData(meKey, me);
    },
  });
}

export function useSignOut() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: () => call(api.POST("/auth/logout")),
    onSettled: () => {
      queryClient.clear();
      queryClient.setQueryData(meKey, null);
    },
  });
}
