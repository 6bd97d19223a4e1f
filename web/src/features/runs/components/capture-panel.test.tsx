import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import { renderWithApp, stubApi } from "../../../test/render";
import type { CaptureSession, Run } from "../api";
import { CapturePanel } from "./capture-panel";

const RUN: Run = {
  id: "r1",
  experiment_id: "e1",
  project_id: "p1",
  name: "run-001",
  params: {},
  git_sha: null,
  env: {},
  tags: [],
  notes: "",
  metadata: {},
  status: "running",
  started_at: "2026-01-12T09:00:00Z",
  finished_at: null,
  duration_seconds: null,
  failure_reason: null,
  created_by: "u1",
  created_at: "2026-01-12T09:00:00Z",
  updated_at: "2026-01-12T09:00:00Z",
};

function session(overrides: Partial<CaptureSession>): CaptureSession {
  return {
    id: "s1",
    run_id: "r1",
    project_id: "p1",
    ordinal_number: 1,
    status: "running",
    started_at: "2026-01-12T09:00:00Z",
    stopped_at: null,
    planned_stop_at: null,
    gaps: [],
    initiated_by: "u1",
    notes: "",
    failure_reason: null,
    created_at: "2026-01-12T09:00:00Z",
    updated_at: "2026-01-12T09:00:00Z",
    ...overrides,
  };
}

const SESSIONS = "GET /api/v1/runs/r1/capture-sessions";
const userName = (id: string | null) => (id === "u1" ? "ada" : "—");

afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

describe("CapturePanel", () => {
  it("shows the running session's timer and stops it", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true, now: Date.parse("2026-01-12T09:01:05Z") });
    let sessions = [session({})];
    const calls = stubApi({
      [SESSIONS]: () => ({ items: sessions, next_cursor: null }),
      "POST /api/v1/runs/r1/capture-sessions/s1/stop": () => {
        sessions = [session({ status: "succeeded", stopped_at: "2026-01-12T09:01:06Z" })];
        return sessions[0];
      },
    });

    renderWithApp(<CapturePanel run={RUN} canEdit userName={userName} />);

    expect((await screen.findByTestId("capture-timer")).textContent).toBe("1:05");
    fireEvent.click(screen.getByRole("button", { name: /Stop capture/ }));
    await waitFor(() => expect(screen.queryByTestId("capture-timer")).toBeNull());
    expect(calls.filter((call) => call.method === "POST")).toEqual([{ method: "POST", path: "/api/v1/runs/r1/capture-sessions/s1/stop", body: {} }]);
    const row = screen.getByTestId("capture-session-1");
    expect(within(row).getByText("succeeded")).toBeTruthy();
    expect(within(row).getByText("ada")).toBeTruthy();
  });

  it("keeps start disabled with the reason until the run runs", async () => {
    stubApi({ [SESSIONS]: () => ({ items: [], next_cursor: null }) });

    renderWithApp(<CapturePanel run={{ ...RUN, status: "draft" }} canEdit userName={userName} />);

    const start = await screen.findByRole<HTMLButtonElement>("button", { name: /Start capture/ });
    expect(start.disabled).toBe(true);
    expect(start.getAttribute("title")).toMatch(/Start the run first/);
    expect(await screen.findByText("No capture sessions yet.")).toBeTruthy();
  });

  it("shows a viewer the sessions and no controls", async () => {
    stubApi({ [SESSIONS]: () => ({ items: [session({ status: "failed", failure_reason: "Pressure sensor dropped out." })], next_cursor: null }) });

    renderWithApp(<CapturePanel run={RUN} canEdit={false} userName={userName} />);

    expect(await screen.findByText("Pressure sensor dropped out.")).toBeTruthy();
    expect(screen.queryByRole("button", { name: /capture/i })).toBeNull();
  });

  it("turns a refused start into a toast with the request id", async () => {
    stubApi({
      [SESSIONS]: () => ({ items: [], next_cursor: null }),
      "POST /api/v1/runs/r1/capture-sessions": () =>
        Response.json(
          { type: "about:blank", title: "Conflict", status: 409, code: "run_not_running", detail: "Capture starts only in a running run.", request_id: "req-42" },
          { status: 409, headers: { "Content-Type": "application/problem+json" } },
        ),
    });

    const { toasts } = renderWithApp(<CapturePanel run={RUN} canEdit userName={userName} />);
    fireEvent.click(await screen.findByRole("button", { name: /Start capture/ }));

    await waitFor(() => expect(toasts.snapshot()).toHaveLength(1));
    expect(toasts.snapshot()[0]).toMatchObject({ tone: "error", title: "Conflict", requestId: "req-42" });
  });
});
