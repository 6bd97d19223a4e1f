import { describe, expect, it, vi } from "vitest";

import { createSessionFetch, readCookie } from "./session-fetch";

const ORIGIN = "http://portal.test";

function answer(status: number): Response {
  return new Response(status === 204 ? null : "{}", { status });
}

/** A gateway stand-in: answers by path from `routes`, records what it was sent. */
function gateway(routes: Record<string, number[]>) {
  const sent: { method: string; path: string; csrf: string | null; body: string }[] = [];
  const fetch = vi.fn(async (request: Request) => {
    const path = new URL(request.url).pathname;
    sent.push({ method: request.method, path, csrf: request.headers.get("X-CSRF-Token"), body: await request.text() });
    const statuses = routes[path] ?? [200];
    return answer(statuses.length > 1 ? (statuses.shift() as number) : (statuses[0] as number));
  });
  return { fetch, sent };
}

describe("readCookie", () => {
  it("finds a cookie among others and decodes it", () => {
    expect(readCookie("a=1; csrf_token=x%2By; b=2", "csrf_token")).toBe("x+y");
    expect(readCookie("a=1", "csrf_token")).toBeNull();
  });
});

describe("createSessionFetch", () => {
  it("sends the CSRF cookie's value on unsafe methods only", async () => {
    const { fetch, sent } = gateway({});
    const send = createSessionFetch({ fetch, cookies: () => "csrf_token=t1" });

    await send(new Request(`${ORIGIN}/api/v1/projects`, { method: "POST", body: "{}" }));
    await send(new Request(`${ORIGIN}/api/v1/projects`));

    expect(sent.map((item) => [item.method, item.csrf])).toEqual([
      ["POST", "t1"],
      ["GET", null],
    ]);
  });

  it("refreshes once on a 401 and replays the request with the new CSRF token", async () => {
    let cookie = "csrf_token=old";
    const { fetch, sent } = gateway({ "/api/v1/runs/r1": [401, 200], "/auth/refresh": [200] });
    const send = createSessionFetch({
      fetch: async (request) => {
        const response = await fetch(request);
        if (new URL(request.url).pathname === "/auth/refresh") cookie = "csrf_token=new";
        return response;
      },
      cookies: () => cookie,
    });

    const response = await send(new Request(`${ORIGIN}/api/v1/runs/r1`, { method: "PATCH", body: '{"status":"running"}' }));

    expect(response.status).toBe(200);
    expect(sent.map((item) => [item.method, item.path, item.csrf])).toEqual([
      ["PATCH", "/api/v1/runs/r1", "old"],
      ["POST", "/auth/refresh", "old"],
      ["PATCH", "/api/v1/runs/r1", "new"],
    ]);
    expect(sent[2]?.body).toBe('{"status":"running"}');
  });

  it("shares one refresh among parallel 401s", async () => {
    const { fetch, sent } = gateway({ "/api/v1/a": [401, 200], "/api/v1/b": [401, 200], "/auth/refresh": [200] });
    const send = createSessionFetch({ fetch, cookies: () => "csrf_token=t" });

    const answers = await Promise.all([send(new Request(`${ORIGIN}/api/v1/a`)), send(new Request(`${ORIGIN}/api/v1/b`))]);

    expect(answers.map((item) => item.status)).toEqual([200, 200]);
    expect(sent.filter((item) => item.path === "/auth/refresh")).toHaveLength(1);
  });

  it("reports the end of the session when the refresh is refused", async () => {
    const { fetch } = gateway({ "/api/v1/a": [401], "/auth/refresh": [401] });
    const onSignedOut = vi.fn();
    const send = createSessionFetch({ fetch, cookies: () => "csrf_token=t", onSignedOut });

    const response = await send(new Request(`${ORIGIN}/api/v1/a`));

    expect(response.status).toBe(401);
    expect(onSignedOut).toHaveBeenCalledOnce();
  });

  it("does not refresh for the session routes or without any session", async () => {
    const { fetch, sent } = gateway({ "/auth/login": [401], "/auth/me": [401] });
    const withSession = createSessionFetch({ fetch, cookies: () => "csrf_token=t" });
    const without = createSessionFetch({ fetch, cookies: () => "" });

    expect((await withSession(new Request(`${ORIGIN}/auth/login`, { method: "POST", body: "{}" }))).status).toBe(401);
    expect((await without(new Request(`${ORIGIN}/auth/me`))).status).toBe(401);

    expect(sent.map((item) => item.path)).toEqual(["/auth/login", "/auth/me"]);
  });
});
