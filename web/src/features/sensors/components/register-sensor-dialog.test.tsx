import { fireEvent, screen, waitFor } from "@testing-library/react";
import { useState } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";

import { renderWithApp, stubApi } from "../../../test/render";
import { RegisterSensorDialog } from "./register-sensor-dialog";

const TOKEN = `etps_${"a".repeat(32)}_${"b".repeat(43)}`;

function Harness() {
  const [open, setOpen] = useState(true);
  return (
    <>
      <button type="button" onClick={() => setOpen(true)}>
        reopen
      </button>
      <RegisterSensorDialog projectId="p1" open={open} onClose={() => setOpen(false)} />
    </>
  );
}

afterEach(() => vi.unstubAllGlobals());

describe("RegisterSensorDialog", () => {
  it("sends the sensor with its linear profile, shows the token once, then forgets it", async () => {
    const calls = stubApi({
      "POST /api/v1/sensors": () => Response.json({ id: "s1", name: "Pitot probe 1", token: TOKEN }, { status: 201 }),
      "GET /api/v1/sensors": () => ({ items: [], next_cursor: null }),
    });
    renderWithApp(<Harness />);

    fireEvent.change(screen.getByLabelText("Name"), { target: { value: "Pitot probe 1" } });
    fireEvent.change(screen.getByLabelText("Type"), { target: { value: "pressure" } });
    fireEvent.change(screen.getByLabelText("Display unit"), { target: { value: "Pa" } });
    fireEvent.change(screen.getByLabelText("Slope a"), { target: { value: "250" } });
    fireEvent.click(screen.getByRole("button", { name: "Register sensor" }));

    expect((await screen.findByTestId("sensor-token")).textContent).toBe(TOKEN);
    expect(screen.getByRole("note").textContent).toContain("will not be shown again");
    expect(calls.find((call) => call.method === "POST")?.body).toEqual({
      name: "Pitot probe 1",
      type: "pressure",
      input_unit: "V",
      display_unit: "Pa",
      description: "",
      project_id: "p1",
      conversion_profile: { version: "v1", kind: "linear", payload: { a: 250, b: 0 } },
    });

    fireEvent.click(screen.getByRole("button", { name: "I have stored the token" }));
    fireEvent.click(screen.getByRole("button", { name: "reopen" }));
    await waitFor(() => expect(screen.queryByTestId("sensor-token")).toBeNull());
    expect(screen.getByRole("button", { name: "Register sensor" })).toBeTruthy();
  });
});
