// Roles in the portal: the owner manages members; a viewer sees no edit controls; a refused
// change (the role lowered while the page was open) comes back as a toast with its request_id.
import type { Browser, Page } from "@playwright/test";

import { expect, Portal, registerUser, screenshot, test } from "./portal";

async function signedIn(browser: Browser, username: string): Promise<{ page: Page; portal: Portal; close: () => Promise<void> }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const portal = new Portal(page);
  await portal.signIn(username);
  return { page, portal, close: () => context.close() };
}

test("the owner adds people; a viewer reads without edit controls", async ({ page, request, browser }) => {
  const owner = await registerUser(request, "own");
  const colleague = await registerUser(request, "col");
  const portal = new Portal(page);
  await portal.signIn(owner);
  const projectId = await portal.createProject("Wind tunnel");
  await portal.createExperiment("Wing C");
  await portal.statusButton("Experiment status", "Start").click();
  const runId = await portal.createRun("run-007", { params: { speed_ms: 30 }, env: { rig: "WT-2" }, gitSha: "a1b2c3d" });
  await portal.statusButton("Run status", "Start run").click();
  await expect(page.locator("h1 [data-status=running]")).toBeVisible();

  await page.getByRole("link", { name: "Members" }).click();
  await page.getByLabel("Username").fill(colleague);
  await page.getByLabel("Role", { exact: true }).selectOption("editor");
  await page.getByRole("button", { name: "Add member" }).click();
  await expect(page.getByTestId(`member-${colleague}`)).toBeVisible();
  await screenshot(page, "members");

  // The colleague, an editor for now, opens the run: capture can start.
  const other = await signedIn(browser, colleague);
  await other.page.goto(`/projects/${projectId}/runs/${runId}`);
  const start = other.page.getByRole("button", { name: "● Start capture" });
  await expect(start).toBeEnabled();

  // The owner makes them a viewer while their page is open: the service refuses the click, and
  // the toast says why with the request id to quote.
  await page.getByRole("combobox", { name: `Role of ${colleague}` }).selectOption("viewer");
  await expect(page.getByRole("combobox", { name: `Role of ${colleague}` })).toHaveValue("viewer");
  await start.click();
  const toast = await other.portal.toast(/Forbidden|permission|role/i);
  await expect(toast.getByTestId("request-id")).toHaveText(/^[0-9a-f]{16,}$/);
  await screenshot(other.page, "toast-forbidden");

  // The refusal makes the page re-read the role: the controls go, and stay gone after a reload.
  await expect(other.page.getByRole("button", { name: /Start capture/ })).toHaveCount(0);
  await other.page.reload();
  await expect(other.page.getByRole("heading", { name: "run-007" })).toBeVisible();
  await expect(other.page.getByRole("button", { name: /Start capture/ })).toHaveCount(0);
  await expect(other.page.getByRole("group", { name: "Run status" })).toHaveCount(0);
  await expect(other.page.getByRole("button", { name: "Edit", exact: true })).toHaveCount(0);
  await expect(other.page.getByRole("combobox", { name: "Sensor to bind" })).toHaveCount(0);
  await expect(other.page.getByRole("region", { name: "Parameters" }).getByText("speed_ms")).toBeVisible();
  await other.page.getByRole("link", { name: "Wing C" }).click();
  await expect(other.page.getByRole("heading", { name: "Wing C" })).toBeVisible();
  await expect(other.page.getByRole("button", { name: "New run" })).toHaveCount(0);
  await expect(other.page.getByRole("group", { name: "Experiment status" })).toHaveCount(0);
  await expect(other.page.getByRole("button", { name: "Edit", exact: true })).toHaveCount(0);
  await other.page.getByRole("link", { name: "Experiments" }).first().click();
  await expect(other.page.getByRole("table", { name: "Experiments" })).toBeVisible();
  await expect(other.page.getByRole("button", { name: "New experiment" })).toHaveCount(0);
  await other.page.getByRole("link", { name: "Members" }).click();
  await expect(other.page.getByTestId(`member-${owner}`)).toBeVisible();
  await expect(other.page.getByRole("button", { name: "Add member" })).toHaveCount(0);
  await expect(other.page.getByRole("combobox", { name: `Role of ${owner}` })).toHaveCount(0);
  await screenshot(other.page, "members-viewer");
  await other.page.getByRole("link", { name: "Sensors" }).click();
  await expect(other.page.getByRole("heading", { name: "Sensors" })).toBeVisible();
  await expect(other.page.getByRole("button", { name: "Register sensor" })).toHaveCount(0);
  await other.close();
});
