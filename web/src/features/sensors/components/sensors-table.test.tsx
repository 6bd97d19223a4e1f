import { screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import { renderWithApp, stubApi } from "../../../test/render";
import type { Sensor } from "../api";
import { SensorsTable } from "./sensors-table";

function sensor(name: string, channels: Sensor["channels"]): Sensor {
  return {
    id: `id-${name}`,
    project_id: "p1",
    project_ids: ["p1"],
    name,
    type: "pressure",
    input_unit: "V",
    display_unit: "Pa",
    description: "",
    channels,
    status: "online",
    last_heartbeat: null,
    active_profile_id: null,
    token_preview: "…abcd",
    token_created_at: null,
    token_last_used_at: null,
    grace_tokens: [],
    created_by: "u1",
    created_at: "2026-01-12T10:00:00Z",
    updated_at: "2026-01-12T10:00:00Z",
  };
}

afterEach(() => vi.unstubAllGlobals());

describe("SensorsTable", () => {
  it("labels the channels a sensor declares, with their units", async () => {
    stubApi({
      "GET /api/v1/sensors": () => ({
        items: [
          sensor("Pitot probe 1", [
            { name: "total", unit: "Pa" },
            { name: "static", unit: null },
          ]),
          sensor("Thermocouple", []),
        ],
        next_cursor: null,
      }),
    });
    renderWithApp(<SensorsTable projectId="p1" filters={{ status: [], type: "", q: "" }} canManage={false} sensorPath={(id) => `/sensors/${id}`} />);

    const labelled = await screen.findAllByTestId("sensor-channels");
    expect(labelled.map((cell) => cell.textContent)).toEqual(["total (Pa), static"]);
  });
});
