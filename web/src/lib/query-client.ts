// The server-state cache. Keys are the API path with its parameters (["experiments", {...}]);
// failures become toasts here, once, except those a screen shows itself (`meta.silent`) and a
// read's 401, which sends the app to the sign-in page (a refused sign-in is a toast).
import { MutationCache, QueryCache, QueryClient } from "@tanstack/react-query";

import { ApiError } from "./problem";
import { toasts, type ToastStore } from "./toast-store";

function report(store: ToastStore, error: unknown, silent: unknown, read: boolean): void {
  if (silent === true || (read && error instanceof ApiError && error.status === 401)) {
    return;
  }
  store.error(error);
}

export function createQueryClient(store: ToastStore = toasts): QueryClient {
  const client: QueryClient = new QueryClient({
    queryCache: new QueryCache({ onError: (error, query) => report(store, error, query.meta?.["silent"], true) }),
    mutationCache: new MutationCache({
      onError: (error, _variables, _context, mutation) => {
        report(store, error, mutation.meta?.["silent"], false);
        // A refused change may mean the caller's role changed: the screens re-read it and drop
        // the controls it no longer allows.
        if (error instanceof ApiError && error.status === 403) {
          void client.invalidateQueries({ queryKey: ["projects"] });
        }
      },
    }),
    defaultOptions: {
      queries: {
        staleTime: 10_000,
        // A 4xx will not change by asking again; a network blip or a 5xx may.
        retry: (failures, error) => failures < 2 && !(error instanceof ApiError && error.status >= 400 && error.status < 500),
        refetchOnWindowFocus: true,
      },
    },
  });
  return client;
}
