import { QueryClientProvider, type QueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { RouterProvider } from "react-router";

import { Toasts } from "../components/toasts";
import { meKey } from "../features/auth";
import { onSignedOut } from "../lib/api";
import { createQueryClient } from "../lib/query-client";
import { createAppRouter } from "./router";

export function App({ queryClient: given }: { queryClient?: QueryClient }) {
  const [queryClient] = useState(() => given ?? createQueryClient());
  const [router] = useState(createAppRouter);
  // A session the gateway refused: forget the user; the guard sends them to sign in.
  useEffect(() => onSignedOut(() => queryClient.setQueryData(meKey, null)), [queryClient]);
  return (
    <QueryClientProvider client={queryClient}>
      <RouterProvider router={router} />
      <Toasts />
    </QueryClientProvider>
  );
}
