// Components with a real query cache and router, against a fetch stub that plays the gateway.
import { QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { MemoryRouter } from "react-router";
import { vi } from "vitest";

import { createQueryClient } from "../lib/query-client";
import { ToastStore } from "../lib/toast-store";

export type Route = (request: Request) => unknown | Response | Promise<unknown | Response>;

/** Stubs fetch: `routes` maps "METHOD /path" to a body (200) or a Response. */
export function stubApi(routes: Record<string, Route>) {
  const calls: { method: string; path: string; body: unknown }[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (request: Request) => {
      const url = new URL(request.url);
      const key = `${request.method} ${url.pathname}`;
      const text = await request.clone().text();
      calls.push({ method: request.method, path: url.pathname, body: text ? JSON.parse(text) : undefined });
      const route = routes[key];
      if (!route) return new Response(JSON.stringify({ title: "Not Found", status: 404, code: "not_found", request_id: "t" }), { status: 404 });
      const result = await route(request);
      return result instanceof Response ? result : Response.json(result);
    }),
  );
  return calls;
}

export function renderWithApp(ui: ReactElement) {
  const toasts = new ToastStore();
  const queryClient = createQueryClient(toasts);
  const view = render(
    <QueryClientProvider client={queryClient}>
      <MemoryRouter>{ui}</MemoryRouter>
    </QueryClientProvider>,
  );
  return { ...view, toasts, queryClient };
}
