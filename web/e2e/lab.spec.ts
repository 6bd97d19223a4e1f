// The lab's everyday path: an account, a project, an experiment, a run, a capture started, timed,
// stopped and listed; every URL on the way reloads to the same screen.
import { expect, Portal, screenshot, test, uniqueName, PASSWORD } from "./portal";

test("a new user records a run and captures in it", async ({ page }) => {
  const portal = new Portal(page);
  const username = uniqueName("ada");

  await page.goto("/");
  await expect(page).toHaveURL(/\/signin$/);
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  await screenshot(page, "sign-in");

  await page.getByRole("link", { name: "Create an account" }).click();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Email").fill(`${username}@example.org`);
  await page.getByLabel("Password").fill(PASSWORD);
  await screenshot(page, "register");
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByRole("heading", { name: "Projects" })).toBeVisible();
  await expect(page.getByText("No projects yet")).toBeVisible();

  const projectId = await portal.createProject("Wind tunnel");
  await expect(page.getByText("No experiments yet")).toBeVisible();

  const experimentId = await portal.createExperiment("Wing B sweep");
  await expect(page).toHaveURL(new RegExp(`/projects/${projectId}/experiments/${experimentId}$`));
  // From draft the experiment can start; finishing needs it running first.
  await expect(portal.statusButton("Experiment status", "Finish")).toBeDisabled();
  await expect(portal.statusButton("Experiment status", "Finish")).toHaveAttribute("title", "An experiment cannot go from draft to finished.");
  await portal.statusButton("Experiment status", "Start").click();
  await expect(page.locator("h1 [data-status=running]")).toBeVisible();
  await page.getByRole("button", { name: "Edit", exact: true }).click();
  const editExperiment = page.getByRole("dialog", { name: "Edit experiment" });
  await editExperiment.getByLabel("Tags").fill("aero wing-b rev2");
  await editExperiment.getByRole("button", { name: "Save" }).click();
  await expect(page.locator(".page-header .tag", { hasText: "rev2" })).toBeVisible();

  const runId = await portal.createRun("run-001", {
    params: { speed_ms: 25, angle_deg: 4, flaps: "down" },
    env: { rig: "WT-2", python: "3.11.7" },
    gitSha: "3f9a2c1d8e",
  });
  await expect(page).toHaveURL(new RegExp(`/projects/${projectId}/runs/${runId}$`));
  await expect(page.getByRole("region", { name: "Parameters" }).getByText("speed_ms")).toBeVisible();
  await expect(page.getByRole("region", { name: "Environment" }).getByText("WT-2")).toBeVisible();
  await expect(page.getByTestId("git-sha")).toHaveText("3f9a2c1d8e");

  // Capture needs a running run: the button says so until the run starts.
  const start = page.getByRole("button", { name: "● Start capture" });
  await expect(start).toBeDisabled();
  await expect(start).toHaveAttribute("title", /Start the run first/);
  await portal.statusButton("Run status", "Start run").click();
  await expect(page.locator("h1 [data-status=running]")).toBeVisible();

  await start.click();
  const timer = page.getByTestId("capture-timer");
  await expect(timer).toBeVisible();
  await expect(page.getByTestId("capture-session-1").locator("[data-status=running]")).toBeVisible();
  // The run cannot finish while capture runs, and says why.
  await expect(portal.statusButton("Run status", "Mark succeeded")).toBeDisabled();
  await expect(portal.statusButton("Run status", "Mark succeeded")).toHaveAttribute("title", "Capture is running: stop it first.");
  await expect(timer).not.toHaveText("0:00", { timeout: 4_000 });
  await screenshot(page, "run-capturing");

  await page.getByRole("button", { name: "■ Stop capture" }).click();
  await expect(timer).toBeHidden();
  const session = page.getByTestId("capture-session-1");
  await expect(session.locator("[data-status=succeeded]")).toBeVisible();
  await expect(session).toContainText(username);

  await portal.statusButton("Run status", "Mark succeeded").click();
  await expect(page.locator("h1 [data-status=succeeded]")).toBeVisible();
  await page.getByRole("button", { name: "Edit", exact: true }).click();
  const editRun = page.getByRole("dialog", { name: "Edit run" });
  await editRun.getByLabel("Notes").fill("Gusty above 30 m/s; flaps rattled.");
  await editRun.getByRole("button", { name: "Save" }).click();
  await expect(page.getByRole("region", { name: "Run facts" })).toContainText("Gusty above 30 m/s");

  // The run's history tells the story, newest first.
  const history = page.getByRole("region", { name: "History" }).getByRole("listitem");
  await expect(history.first()).toContainText("changed notes");
  await expect(history.filter({ hasText: "stopped capture session #1 as succeeded" })).toHaveCount(1);
  await expect(history.filter({ hasText: "started capture session #1" })).toHaveCount(1);
  await expect(history.filter({ hasText: "changed the status from draft to running" })).toHaveCount(1);
  await expect(history.last()).toContainText(`${username} created the run`);

  // The run's URL is shareable: a reload lands on the same run with its sessions.
  await page.reload();
  await expect(page.getByRole("heading", { name: "run-001" })).toBeVisible();
  await expect(page.getByTestId("capture-session-1").locator("[data-status=succeeded]")).toBeVisible();
  await screenshot(page, "run");

  await page.getByRole("link", { name: "Wing B sweep" }).click();
  await expect(page.getByRole("table", { name: "Runs" }).getByRole("link", { name: "run-001" })).toBeVisible();
  await screenshot(page, "experiment");

  await page.getByRole("link", { name: "All projects" }).click();
  await expect(page.getByRole("list", { name: "Projects" }).getByRole("link", { name: /Wind tunnel/ })).toBeVisible();
  await screenshot(page, "projects");
});

test("the experiment list filters, searches and sorts through the URL", async ({ page, request }) => {
  const portal = new Portal(page);
  const { registerUser } = await import("./portal");
  const username = await registerUser(request);
  await portal.signIn(username);
  const projectId = await portal.createProject("Engine bench");
  for (const [name, tags] of [
    ["Cold start", "engine cold"],
    ["Hot soak", "engine hot"],
    ["Idle drift", "engine"],
  ] as const) {
    await page.goto(`/projects/${projectId}/experiments`);
    await portal.createExperiment(name, tags);
  }
  await portal.statusButton("Experiment status", "Start").click();
  await expect(page.locator("h1 [data-status=running]")).toBeVisible();

  await page.goto(`/projects/${projectId}/experiments`);
  const rows = page.getByRole("table", { name: "Experiments" }).locator("tbody tr");
  await expect(rows).toHaveCount(3);
  await expect(rows.first()).toContainText("Idle drift");

  await page.getByRole("combobox", { name: "Sort" }).selectOption("name");
  await expect(page).toHaveURL(/sort=name/);
  await expect(rows.first()).toContainText("Cold start");

  await page.getByRole("searchbox", { name: "Search experiments" }).fill("soak");
  await expect(page).toHaveURL(/q=soak/);
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText("Hot soak");
  await page.getByRole("searchbox", { name: "Search experiments" }).fill("");
  await expect(rows).toHaveCount(3);

  await page.locator(".chip", { hasText: "running" }).click();
  await expect(page).toHaveURL(/status=running/);
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText("Idle drift");
  await screenshot(page, "experiments");

  // A filtered list is a link: reloading keeps the filters.
  await page.reload();
  await expect(rows).toHaveCount(1);
  await expect(page.getByRole("combobox", { name: "Sort" })).toHaveValue("name");
  await page.getByRole("button", { name: "Clear filters" }).click();
  await expect(rows).toHaveCount(3);
});
