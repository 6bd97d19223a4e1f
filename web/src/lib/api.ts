// The one configured API client: the generated @etp/client over the session fetch, and `call`,
// which turns an answer into its data or throws an ApiError.
import { createEtpClient, type components, type EtpClient } from "@etp/client";

import { ApiError, networkError, problemFromResponse } from "./problem";
import { createSessionFetch } from "./session-fetch";

export type Schemas = components["schemas"];

type SignedOutListener = () => void;
const signedOutListeners = new Set<SignedOutListener>();

/** Called when the gateway refuses the session (expired and not refreshable, or signed out elsewhere). */
export function onSignedOut(listener: SignedOutListener): () => void {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

export function createApi(baseUrl: string, fetchImpl?: (request: Request) => Promise<Response>): EtpClient {
  return createEtpClient({
    baseUrl,
    credentials: "same-origin",
    fetch: createSessionFetch({
      ...(fetchImpl ? { fetch: fetchImpl } : {}),
      onSignedOut: () => signedOutListeners.forEach((listener) => listener()),
    }),
  });
}

export const api: EtpClient = createApi(globalThis.location?.origin ?? "http://localhost");

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The 2xx body of a call (undefined for 204), or an ApiError. */
export async function call<T>(request: Promise<Answer<T>>): Promise<T> {
  let answer: Answer<T>;
  try {
    answer = await request;
  } catch (cause) {
    throw networkError(cause);
  }
  if (!answer.response.ok) {
    throw problemFromResponse(answer.response, answer.error);
  }
  return answer.data as T;
}

export function isApiError(error: unknown, status?: number): error is ApiError {
  return error instanceof ApiError && (status === undefined || error.status === status);
}
