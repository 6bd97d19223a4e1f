import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import { renderWithApp, stubApi } from "../../../test/render";
import { ProfileDialog } from "./profile-dialog";

const BASE = "/api/v1/sensors/s1/conversion-profiles";
const profile = (status: string) => ({ id: "p1", sensor_id: "s1", version: "cal-1", kind: "table", status });

afterEach(() => vi.unstubAllGlobals());

describe("ProfileDialog", () => {
  it("previews the table on the sample values, then creates the draft and publishes it", async () => {
    const calls = stubApi({
      [`POST ${BASE}:preview`]: async (request) => {
        // Only the table multiplies by 100 here: the preview shown is the table's.
        const body = (await request.json()) as { kind: string; raw_values: number[] };
        const factor = body.kind === "table" ? 100 : -1;
        return { items: body.raw_values.map((raw) => ({ raw_value: raw, physical_value: raw * factor, error: null })) };
      },
      [`POST ${BASE}`]: () => Response.json(profile("draft"), { status: 201 }),
      [`POST ${BASE}/p1/publish`]: () => profile("active"),
    });
    const onClose = vi.fn();
    renderWithApp(<ProfileDialog sensorId="s1" units={{ input: "V", display: "kPa" }} open onClose={onClose} />);

    fireEvent.change(screen.getByLabelText("Version"), { target: { value: "cal-1" } });
    fireEvent.change(screen.getByLabelText("Kind"), { target: { value: "table" } });
    fireEvent.change(screen.getByLabelText(/Calibration points/), { target: { value: "0, 0\n1, 100" } });
    fireEvent.change(screen.getByLabelText(/Sample raw values/), { target: { value: "0.5 2" } });

    const preview = screen.getByRole("table", { name: "Preview" });
    await waitFor(() => expect(within(preview).queryByText("200")).not.toBeNull());
    const sent = calls.filter((call) => call.path.endsWith(":preview")).at(-1)?.body;
    expect(sent).toEqual({ kind: "table", payload: { points: [{ x: 0, y: 0 }, { x: 1, y: 100 }], extrapolate: false }, raw_values: [0.5, 2] });

    fireEvent.click(screen.getByRole("button", { name: "Create profile" }));
    await waitFor(() => expect(onClose).toHaveBeenCalled());
    const writes = calls.filter((call) => !call.path.endsWith(":preview"));
    expect(writes.map((call) => call.path)).toEqual([BASE, `${BASE}/p1/publish`]);
    expect(writes[0]?.body).toEqual({ kind: "table", payload: { points: [{ x: 0, y: 0 }, { x: 1, y: 100 }], extrapolate: false }, version: "cal-1", description: "" });
  });

  it("publishes from a past time for owners and hands over the backfill", async () => {
    const asked: string[] = [];
    const calls = stubApi({
      [`POST ${BASE}:preview`]: () => ({ items: [] }),
      [`POST ${BASE}`]: () => Response.json(profile("draft"), { status: 201 }),
      [`POST ${BASE}/p1/publish`]: (request) => {
        asked.push(new URL(request.url).search);
        return { ...profile("active"), backfill_id: "b1" };
      },
    });
    const onRecomputing = vi.fn();
    renderWithApp(<ProfileDialog sensorId="s1" units={{ input: "V", display: "kPa" }} open onClose={() => {}} canRecompute onRecomputing={onRecomputing} />);

    fireEvent.change(screen.getByLabelText("Version"), { target: { value: "cal-1" } });
    fireEvent.click(screen.getByLabelText(/Publish from a past time/));
    const create = screen.getByRole("button", { name: "Create profile" }) as HTMLButtonElement;
    expect(create.disabled).toBe(true); // no start yet
    fireEvent.change(screen.getByLabelText(/Valid from/), { target: { value: "2026-12-01T08:30:00" } });
    fireEvent.click(create);

    await waitFor(() => expect(onRecomputing).toHaveBeenCalledWith("b1"));
    expect(asked).toEqual(["?backfill=true"]);
    const publish = calls.find((call) => call.path === `${BASE}/p1/publish`);
    expect(publish?.body).toEqual({ valid_from: new Date("2026-12-01T08:30:00").toISOString() });
  });

  it("offers publishing from a past time to owners only", () => {
    stubApi({});
    renderWithApp(<ProfileDialog sensorId="s1" units={{ input: "V", display: "kPa" }} open onClose={() => {}} />);
    expect(screen.queryByLabelText(/Publish from a past time/)).toBeNull();
    expect(screen.getByLabelText(/Schedule/)).not.toBeNull();
  });

  it("says what is wrong with the formula and will not create it", async () => {
    stubApi({});
    renderWithApp(<ProfileDialog sensorId="s1" units={{ input: "V", display: "kPa" }} open onClose={() => {}} />);
    fireEvent.change(screen.getByLabelText("Version"), { target: { value: "cal-1" } });
    fireEvent.change(screen.getByLabelText(/Slope a/), { target: { value: "abc" } });
    expect(screen.getByRole("alert").textContent).toBe("The slope a must be a number.");
    expect((screen.getByRole("button", { name: "Create profile" }) as HTMLButtonElement).disabled).toBe(true);
  });
});
