// A sensor's own page: a calibration table tried on sample values before it is published, the
// readings that follow converted with it, a batch the device got wrong in the error journal, a
// profile published for a past time, and the sensor shared into a second project.
import { expect, Portal, registerUser, screenshot, test } from "./portal";

test("a sensor is calibrated, shared, and its refused batches are shown", async ({ page, request }) => {
  const portal = new Portal(page);
  await portal.signIn(await registerUser(request));
  await portal.createProject("Test bench");
  await portal.createProject("Wind tunnel");

  await page.getByRole("link", { name: "Sensors" }).click();
  await page.getByRole("button", { name: "Register sensor" }).first().click();
  const form = page.getByRole("dialog", { name: "Register a sensor" });
  await form.getByLabel("Name").fill("Thermocouple 3");
  await form.getByLabel("Type").fill("temperature");
  await form.getByLabel("Display unit").fill("°C");
  await form.getByRole("button", { name: "Register sensor" }).click();
  const shown = page.getByRole("dialog", { name: "Thermocouple 3 is registered" });
  const token = (await shown.getByTestId("sensor-token").textContent()) ?? "";
  const sensorId = await shown.getByLabel("Sensor id").inputValue();
  await shown.getByRole("button", { name: "I have stored the token" }).click();

  await page.getByRole("link", { name: "Thermocouple 3" }).click();
  await expect(page.getByRole("heading", { name: "Thermocouple 3" })).toBeVisible();
  await expect(page.getByText("No conversion profile")).toBeVisible();

  // A calibration table, previewed on sample values as it is typed, then published.
  await page.getByRole("button", { name: "New profile" }).click();
  const dialog = page.getByRole("dialog", { name: "New conversion profile" });
  await dialog.getByLabel("Version").fill("cal-2026-12");
  await dialog.getByLabel("Kind").selectOption("table");
  await dialog.getByLabel(/Calibration points/).fill("0, -20\n1, 0\n2, 100");
  await dialog.getByLabel(/Sample raw values/).fill("0.5, 1.5, 3");
  const preview = dialog.getByRole("table", { name: "Preview" });
  await expect(preview.getByRole("row")).toHaveCount(4);
  await expect(preview).toContainText("-10");
  await expect(preview).toContainText("50");
  await expect(preview.getByRole("row").last()).toContainText("100"); // clamped above the table
  await screenshot(page, "sensor-profile-preview");
  await dialog.getByRole("button", { name: "Create profile" }).click();
  const profile = page.getByTestId("profile-cal-2026-12");
  await expect(profile.locator("[data-status=active]")).toBeVisible();
  await expect(profile).toContainText("table of 3 points, clamped outside");

  // Readings from now on are converted with it.
  const post = (readings: object[]) =>
    request.post("/api/v1/telemetry", { headers: { Authorization: `Bearer ${token}` }, data: { sensor_id: sensorId, readings } });
  await expect.poll(async () => (await post([{ timestamp: new Date().toISOString(), raw_value: 1.5 }])).status()).toBe(202);
  // A batch with a reading that is not a number lands in the error journal.
  expect((await post([{ timestamp: new Date().toISOString(), raw_value: "hot" }])).status()).toBe(422);
  await page.reload();
  const journal = page.getByRole("table", { name: "Ingest errors" });
  await expect(journal).toContainText("422 validation_failed");
  await expect(journal).toContainText("readings.0.raw_value");

  // A profile fixed after the fact, published from an hour ago: its owner sees the stored
  // readings of its validity being converted again (no job runs them in this stack).
  await page.getByRole("button", { name: "New profile" }).click();
  await dialog.getByLabel("Version").fill("cal-2026-12-fixed");
  await dialog.getByLabel(/Slope a/).fill("2");
  await dialog.getByLabel(/Offset b/).fill("0");
  await dialog.getByLabel(/Publish from a past time/).check();
  const hourAgo = await page.evaluate(() => {
    const at = new Date(Date.now() - 3600_000);
    const two = (n: number) => String(n).padStart(2, "0");
    return `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())}T${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}`;
  });
  await dialog.getByLabel(/Valid from/).fill(hourAgo);
  await screenshot(page, "sensor-profile-recompute");
  await dialog.getByRole("button", { name: "Create profile" }).click();
  const recomputing = page.getByRole("status", { name: "Stored readings converted again" });
  await expect(recomputing).toHaveAttribute("data-status", "running");
  await expect(recomputing).toContainText("Converting the stored readings again: 0 of 0");
  await expect(page.getByTestId("profile-cal-2026-12-fixed")).toBeVisible();

  // Shared with the other project: its members see the sensor there.
  await page.getByRole("combobox", { name: "Project to share with" }).selectOption({ label: "Test bench" });
  await page.getByRole("button", { name: "Share", exact: true }).click();
  const projects = page.getByRole("region", { name: "Projects" });
  await expect(projects).toContainText("Test bench");
  await expect(projects).toContainText("home");
  await screenshot(page, "sensor");

  const readings = await page.request.get(`/api/v1/telemetry?sensor_id=${sensorId}`);
  const values = ((await readings.json()) as { items: { physical_value: number | null }[] }).items.map((item) => item.physical_value);
  expect(values).toContain(50);
});
