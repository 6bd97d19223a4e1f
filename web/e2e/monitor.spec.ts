// The live monitor: ten sensors of a run streaming 1,000 readings a second each for 30 s while the
// page keeps its frames and its memory (figures printed), and panels arranged and kept in the URL.
import type { Page } from "@playwright/test";

import { expect, Portal, registerUser, screenshot, test } from "./portal";

const SENSORS = 10;
const RATE = 1000; // readings a second, each sensor
const SECONDS = 30;
const BATCHES_PER_SECOND = 5;

/** The session's API, called from the page (same origin, the CSRF header from its cookie). */
function sessionApi(page: Page) {
  return async (path: string, data: object = {}, method: "POST" | "PATCH" = "POST") => {
    const { status, body } = await page.evaluate(
      async ({ path, data, method }) => {
        const token = document.cookie.split("; ").find((item) => item.startsWith("csrf_token="))?.slice("csrf_token=".length) ?? "";
        const answer = await fetch(path, { method, body: JSON.stringify(data), headers: { "Content-Type": "application/json", "X-CSRF-Token": token } });
        return { status: answer.status, body: await answer.text() };
      },
      { path, data, method },
    );
    expect(status < 300, `${method} ${path}: ${body}`).toBe(true);
    return JSON.parse(body) as Record<string, string>;
  };
}

/** Frame intervals, long tasks and heap, gathered in the page from before it loads. */
function watchPerformance() {
  const w = window as unknown as { perf: { frames: number[]; longTasks: number[] } };
  w.perf = { frames: [], longTasks: [] };
  let last = performance.now();
  const frame = (now: number) => {
    w.perf.frames.push(now - last);
    last = now;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  new PerformanceObserver((list) => list.getEntries().forEach((entry) => w.perf.longTasks.push(entry.duration))).observe({ type: "longtask", buffered: true });
}

async function pagePerformance(page: Page) {
  return page.evaluate(() => {
    const w = window as unknown as { perf: { frames: number[]; longTasks: number[] } };
    const frames = [...w.perf.frames].sort((a, b) => a - b);
    w.perf.frames = [];
    const longTasks = w.perf.longTasks.splice(0);
    const heap = (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0;
    return {
      frames: frames.length,
      p50: frames[Math.floor(frames.length * 0.5)] ?? 0,
      p95: frames[Math.floor(frames.length * 0.95)] ?? 0,
      longTasks: longTasks.length,
      longestTask: Math.max(0, ...longTasks),
      heapMb: heap / 2 ** 20,
    };
  });
}

test("ten sensors at 1,000 readings a second keep the monitor responsive; panels are arranged", async ({ page, request }) => {
  test.setTimeout(150_000);
  const portal = new Portal(page);
  await page.addInitScript(watchPerformance);
  await portal.signIn(await registerUser(request));
  const projectId = await portal.createProject("Engine bench");
  const post = sessionApi(page);

  const experiment = await post("/api/v1/experiments", { project_id: projectId, name: "Endurance" });
  const run = await post(`/api/v1/experiments/${experiment["id"]}/runs`, { name: "endurance-1" });
  const sensors: { id: string; token: string }[] = [];
  for (let n = 1; n <= SENSORS; n++) {
    const sensor = await post("/api/v1/sensors", {
      project_id: projectId,
      name: `cyl-${String(n).padStart(2, "0")}`,
      type: "temperature",
      input_unit: "mV",
      display_unit: "°C",
      conversion_profile: { version: "v1", kind: "linear", payload: { a: 0.5, b: 20 } },
    });
    sensors.push({ id: sensor["id"] as string, token: sensor["token"] as string });
    await post(`/api/v1/runs/${run["id"]}/sensors`, { sensor_id: sensor["id"] });
  }
  await post(`/api/v1/runs/${run["id"]}`, { status: "running" }, "PATCH");
  await post(`/api/v1/runs/${run["id"]}/capture-sessions`, {});

  await page.goto(`/projects/${projectId}/monitor?run=${run["id"]}&window=30`);
  await expect(page.getByRole("region", { name: /^Panel / })).toHaveCount(SENSORS);
  await expect(page.getByTestId("stream-state")).toContainText("live");
  await pagePerformance(page); // the load is not what is measured

  // The devices: each sensor posts a batch every 200 ms.
  const perBatch = RATE / BATCHES_PER_SECOND;
  let sent = 0;
  const started = Date.now();
  const feed = sensors.map(async (sensor, index) => {
    for (let batch = 0; Date.now() - started < SECONDS * 1000; batch++) {
      const due = started + (batch * 1000) / BATCHES_PER_SECOND;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now())));
      const now = Date.now();
      const readings = Array.from({ length: perBatch }, (_, i) => ({
        timestamp: new Date(now - (perBatch - i) * (1000 / RATE)).toISOString(),
        raw_value: 100 + 40 * Math.sin((batch * perBatch + i) / 500 + index),
      }));
      const answer = await request.post("/api/v1/telemetry", { headers: { Authorization: `Bearer ${sensor.token}` }, data: { sensor_id: sensor.id, readings } });
      expect(answer.status(), await answer.text()).toBe(202);
      sent += perBatch;
    }
  });
  await page.waitForTimeout(10_000);
  const early = await pagePerformance(page);
  await Promise.all(feed);
  const late = await pagePerformance(page);
  console.log(
    `monitor under ${SENSORS}×${RATE} readings/s for ${SECONDS} s (${sent} sent, ${Math.round(sent / SECONDS)}/s): ` +
      `frames ${early.frames + late.frames}, frame interval p50 ${late.p50.toFixed(1)} ms p95 ${late.p95.toFixed(1)} ms, ` +
      `long tasks ${early.longTasks + late.longTasks} (longest ${Math.max(early.longestTask, late.longestTask).toFixed(0)} ms), ` +
      `heap ${early.heapMb.toFixed(1)} MB at 10 s, ${late.heapMb.toFixed(1)} MB at the end`,
  );
  const chart = page.getByTestId("monitor-chart-cyl-01");
  await expect.poll(async () => Number(await chart.getAttribute("data-points"))).toBeGreaterThan(RATE * 10);
  await expect(page.getByTestId("now-cyl-01")).toContainText("°C");
  await screenshot(page, "monitor");
  expect(late.frames, "the page kept drawing").toBeGreaterThan(SECONDS * 5);
  expect(late.heapMb - early.heapMb, "memory stays bounded").toBeLessThan(64);

  // Arranged: cyl-02 overlaid on cyl-01's panel, that panel in raw values, then moved last.
  await page.getByRole("combobox", { name: "Overlay a sensor on cyl-01" }).selectOption({ label: "cyl-02" });
  await expect(page.getByRole("region", { name: /^Panel / })).toHaveCount(SENSORS - 1);
  const pair = page.getByRole("region", { name: "Panel cyl-01 + cyl-02" });
  await pair.getByRole("button", { name: "raw", exact: true }).click();
  await expect(pair.getByRole("button", { name: "raw", exact: true })).toHaveAttribute("aria-pressed", "true");
  // Dragged by its handle onto the first panel (the events a drag and drop sends).
  const dataTransfer = await page.evaluateHandle(() => new DataTransfer());
  await page.getByRole("region", { name: "Panel cyl-10" }).locator(".drag-handle").dispatchEvent("dragstart", { dataTransfer });
  await pair.dispatchEvent("dragover", { dataTransfer });
  await pair.dispatchEvent("drop", { dataTransfer });
  await expect(page.getByRole("region", { name: /^Panel / }).first()).toHaveAttribute("aria-label", "Panel cyl-10");
  await page.reload();
  await expect(page.getByRole("region", { name: /^Panel / }).first()).toHaveAttribute("aria-label", "Panel cyl-10");
  await expect(page.getByRole("region", { name: "Panel cyl-01 + cyl-02" }).getByRole("button", { name: "raw", exact: true })).toHaveAttribute("aria-pressed", "true");
});
