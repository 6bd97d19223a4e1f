// The fetch under the API client: the session rides on HttpOnly cookies the gateway sets; this
// adds the CSRF double-submit header to unsafe requests and, on a 401, asks the gateway once to
// refresh the session (parallel 401s share that one refresh) and replays the request. A refresh
// that is refused means the session is over: `onSignedOut` tells the app.

export const CSRF_COOKIE = "csrf_token";
export const CSRF_HEADER = "X-CSRF-Token";
const UNSAFE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const SESSION_ROUTES = ["/auth/login", "/auth/refresh", "/auth/logout"];

export function readCookie(cookies: string, name: string): string | null {
  for (const part of cookies.split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) {
      return decodeURIComponent(value.join("="));
    }
  }
  return null;
}

export interface SessionFetchOptions {
  fetch?: (request: Request) => Promise<Response>;
  cookies?: () => string;
  onSignedOut?: () => void;
}

export function createSessionFetch(options: SessionFetchOptions = {}): (request: Request) => Promise<Response> {
  const send = options.fetch ?? ((request: Request) => globalThis.fetch(request));
  const cookies = options.cookies ?? (() => document.cookie);
  let refreshing: Promise<boolean> | null = null;

  function withCsrf(request: Request): Request {
    if (!UNSAFE_METHODS.has(request.method)) {
      return request;
    }
    const token = readCookie(cookies(), CSRF_COOKIE);
    if (token !== null) {
      request.headers.set(CSRF_HEADER, token);
    }
    return request;
  }

  function refresh(origin: string): Promise<boolean> {
    refreshing ??= send(withCsrf(new Request(`${origin}/auth/refresh`, { method: "POST", credentials: "same-origin" })))
      .then((response) => response.ok)
      .catch(() => false)
      .finally(() => {
        refreshing = null;
      });
    return refreshing;
  }

  return async function sessionFetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const retry = request.clone();
    const response = await send(withCsrf(request));
    // No CSRF cookie: there was never a session in this browser, so nothing to refresh.
    if (response.status !== 401 || SESSION_ROUTES.includes(url.pathname) || readCookie(cookies(), CSRF_COOKIE) === null) {
      return response;
    }
    if (!(await refresh(url.origin))) {
      options.onSignedOut?.();
      return response;
    }
    const replayed = await send(withCsrf(retry));
    if (replayed.status === 401) {
      options.onSignedOut?.();
    }
    return replayed;
  };
}
