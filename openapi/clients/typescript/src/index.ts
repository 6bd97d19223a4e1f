// The ETP client: openapi-fetch over the types `make sdk` generates from openapi/public.yaml into
// schema.ts. Calls name the path and method as the spec does, and their bodies, parameters and
// answers are typed from it:
//
//     const etp = createEtpClient({ baseUrl: "http://127.0.0.1:8000", token: "etpk_…" });
//     const { data, error } = await etp.POST("/api/v1/projects", { body: { name: "Tunnel" } });
//
// `data` is the 2xx body, `error` the RFC 9457 problem of any other answer.
import createClient, { type Client, type ClientOptions, type Middleware } from "openapi-fetch";

import type { paths } from "./schema.js";

export type { components, operations, paths } from "./schema.js";

export type EtpClient = Client<paths>;

export interface EtpClientOptions extends ClientOptions {
  /** Sent as `Authorization: Bearer`: an access token, an API key (`etpk_…`) or a sensor token (`etps_…`). */
  token?: string;
}

export const DEFAULT_BASE_URL = "http://127.0.0.1:8000";

export function bearer(token: string): Middleware {
  return {
    onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
  };
}

export function createEtpClient(options: EtpClientOptions = {}): EtpClient {
  const { token, ...rest } = options;
  const client = createClient<paths>({ baseUrl: DEFAULT_BASE_URL, ...rest });
  if (token !== undefined) {
    client.use(bearer(token));
  }
  return client;
}
