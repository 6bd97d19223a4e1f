import { screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import { renderWithApp, stubApi } from "../../../test/render";
import { BackfillProgress } from "./backfill-progress";

const backfill = (status: string, done: number, rate: number | null, eta: number | null) => ({
  id: "b1",
  sensor_id: "s1",
  profile_id: "p1",
  status,
  rows_total: 12000,
  rows_done: done,
  rate,
  eta_seconds: eta,
  error: null,
});

afterEach(() => vi.unstubAllGlobals());

describe("BackfillProgress", () => {
  it("follows a running backfill until it is done", async () => {
    const answers = [backfill("running", 3000, 1500, 6), backfill("succeeded", 12000, null, null)];
    const calls = stubApi({ "GET /api/v1/backfills/b1": () => answers.shift() ?? backfill("succeeded", 12000, null, null) });
    renderWithApp(<BackfillProgress backfillId="b1" />);

    const status = await screen.findByRole("status", { name: "Stored readings converted again" });
    await waitFor(() => expect(status.textContent).toContain("3,000 of 12,000, 1,500 a second, 6.0 s left"));
    await waitFor(() => expect(status.textContent).toContain("The stored readings are converted again: 12,000 of them."), { timeout: 3000 });
    expect(calls.length).toBe(2); // no more asking once it is over
  });
});
