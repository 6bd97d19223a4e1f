// A sensor from registration to a live chart: its token shown once, bound to a run, a small
// feeder posting readings with the token while capture runs, the chart drawing them.
import { expect, Portal, registerUser, screenshot, test } from "./portal";

test("a registered sensor streams into the run's live chart during capture", async ({ page, request }) => {
  const portal = new Portal(page);
  await portal.signIn(await registerUser(request));
  const projectId = await portal.createProject("Wind tunnel");
  await portal.createExperiment("Wing D");
  await portal.statusButton("Experiment status", "Start").click();
  const runId = await portal.createRun("run-live", { params: { speed_ms: 35 }, env: { rig: "WT-2" }, gitSha: "c0ffee1" });
  await portal.statusButton("Run status", "Start run").click();
  await expect(page.locator("h1 [data-status=running]")).toBeVisible();

  await page.getByRole("link", { name: "Sensors" }).click();
  await page.getByRole("button", { name: "Register sensor" }).first().click();
  const form = page.getByRole("dialog", { name: "Register a sensor" });
  await form.getByLabel("Name").fill("Pitot probe 1");
  await form.getByLabel("Type").fill("pressure");
  await form.getByLabel("Display unit").fill("Pa");
  await form.getByLabel("Slope a").fill("250");
  await form.getByRole("button", { name: "Register sensor" }).click();

  const shown = page.getByRole("dialog", { name: "Pitot probe 1 is registered" });
  await expect(shown.getByRole("note")).toContainText("will not be shown again");
  const token = (await shown.getByTestId("sensor-token").textContent()) ?? "";
  expect(token).toMatch(/^etps_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
  const sensorId = await shown.getByLabel("Sensor id").inputValue();
  await expect(shown.getByRole("button", { name: "Copy token" })).toBeVisible();
  await screenshot(page, "sensor-token");
  await shown.getByRole("button", { name: "I have stored the token" }).click();
  const row = page.getByTestId("sensor-Pitot probe 1");
  await expect(row.locator("[data-status=never_seen]")).toBeVisible();
  await expect(row).toContainText(`…${token.slice(-4)}`);
  await expect(page.getByTestId("sensor-token")).toHaveCount(0);

  await page.goto(`/projects/${projectId}/runs/${runId}`);
  await page.getByRole("combobox", { name: "Sensor to bind" }).selectOption({ label: "Pitot probe 1" });
  await page.getByRole("button", { name: "Bind", exact: true }).click();
  await expect(page.getByRole("region", { name: "Bound sensors" })).toContainText("Pitot probe 1");
  await expect(page.getByTestId("stream-state")).toContainText("live");

  await page.getByRole("button", { name: "● Start capture" }).click();
  await expect(page.getByTestId("capture-timer")).toBeVisible();

  // The device: batches of 20 readings, 5 a second, with the sensor's token (no session, no CSRF).
  let sent = 0;
  let feeding = true;
  const feeder = (async () => {
    while (feeding) {
      const now = Date.now();
      const readings = Array.from({ length: 20 }, (_, i) => ({
        timestamp: new Date(now - (19 - i) * 10).toISOString(),
        raw_value: 0.4 + 0.1 * Math.sin((sent * 20 + i) / 15) + (i % 2) * 0.2,
        meta: { signal: i % 2 ? "static" : "total" }, // two channels, drawn apart
      }));
      const answer = await request.post("/api/v1/telemetry", {
        headers: { Authorization: `Bearer ${token}` },
        data: { sensor_id: sensorId, readings },
      });
      expect(answer.status(), await answer.text()).toBe(202);
      sent += 1;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();

  const chart = page.getByTestId("live-chart-Pitot probe 1");
  await expect.poll(async () => Number(await chart.getAttribute("data-points")), { timeout: 10_000 }).toBeGreaterThanOrEqual(100);
  await expect(page.getByTestId("live-value-Pitot probe 1")).toContainText("Pa");
  await expect(chart).toHaveAttribute("data-lines", "Pitot probe 1 · static|Pitot probe 1 · total");
  await screenshot(page, "run-live");
  feeding = false;
  await feeder;

  await page.getByRole("button", { name: "■ Stop capture" }).click();
  await expect(page.getByTestId("capture-session-1").locator("[data-status=succeeded]")).toBeVisible();

  await page.getByRole("link", { name: "Sensors" }).click();
  await expect(page.getByTestId("sensor-Pitot probe 1").locator("[data-status=online]")).toBeVisible({ timeout: 10_000 });
  await expect(page.getByTestId("sensor-Pitot probe 1").getByRole("img", { name: /^[1-9]\d* readings in the last hour/ })).toBeVisible();
  await screenshot(page, "sensors");
  // Filtered by status through the URL: an online sensor is not among the offline ones.
  await page.getByRole("search", { name: "Filter sensors" }).getByText("offline").click();
  await expect(page).toHaveURL(/status=offline/);
  await expect(page.getByText("No sensor matches these filters.")).toBeVisible();
  await page.getByRole("button", { name: "Clear filters" }).click();

  // The owner rotates the token with an hour of grace: the new one is shown once, both work.
  const post = (bearer: string) =>
    request.post("/api/v1/telemetry", {
      headers: { Authorization: `Bearer ${bearer}` },
      data: { sensor_id: sensorId, readings: [{ timestamp: new Date().toISOString(), raw_value: 0.5 }] },
    });
  await page.getByRole("button", { name: "Rotate the token of Pitot probe 1" }).click();
  const rotation = page.getByRole("dialog", { name: "Rotate the token of Pitot probe 1" });
  await rotation.getByLabel("Grace period").selectOption({ label: "1 hour" });
  await rotation.getByRole("button", { name: "Rotate token" }).click();
  const fresh = page.getByRole("dialog", { name: "New token for Pitot probe 1" });
  const newToken = (await fresh.getByTestId("sensor-token").textContent()) ?? "";
  expect(newToken).not.toBe(token);
  await fresh.getByRole("button", { name: "I have stored the token" }).click();
  await expect(page.getByTestId("sensor-Pitot probe 1").locator(".grace")).toContainText(`…${token.slice(-4)}`);
  expect((await post(newToken)).status()).toBe(202);
  expect((await post(token)).status()).toBe(202);

  // Revoked: neither token is taken any more.
  page.once("dialog", (dialog) => void dialog.accept());
  await page.getByRole("button", { name: "Revoke the tokens of Pitot probe 1" }).click();
  await expect(page.getByTestId("sensor-Pitot probe 1")).toContainText("revoked");
  await expect.poll(async () => [(await post(newToken)).status(), (await post(token)).status()], { timeout: 10_000 }).toEqual([401, 401]);
});
