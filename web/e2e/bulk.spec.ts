// Runs and experiments changed together: a status some cannot take changes none and says which
// and why; tags added to all of them at once.
import { expect, Portal, registerUser, screenshot, test } from "./portal";

test("runs take a status and tags together, and a refusal names the run", async ({ page, request }) => {
  const portal = new Portal(page);
  await portal.signIn(await registerUser(request));
  const projectId = await portal.createProject("Wind tunnel");
  const experimentId = await portal.createExperiment("Wing E");
  await portal.statusButton("Experiment status", "Start").click();
  for (const name of ["run-a", "run-b"]) {
    await page.goto(`/projects/${projectId}/experiments/${experimentId}`);
    await portal.createRun(name, { params: { speed_ms: 20 }, env: { rig: "WT-2" }, gitSha: "abc1234" });
  }
  await portal.statusButton("Run status", "Start run").click(); // run-b runs, run-a stays a draft
  await expect(page.locator("h1 [data-status=running]")).toBeVisible();

  await page.goto(`/projects/${projectId}/experiments/${experimentId}`);
  await page.getByRole("checkbox", { name: "Select every run" }).check();
  const bar = page.getByRole("region", { name: "Selected runs" });
  await expect(bar).toContainText("2 selected");
  await bar.getByLabel("New status").selectOption("succeeded");
  await bar.getByRole("button", { name: "Apply status" }).click();
  await expect(bar.getByTestId("bulk-refused-run-a")).toContainText("A run cannot go from draft to succeeded.");
  await expect(bar).toContainText("Nothing changed: 1 of 2 runs cannot take it.");
  await expect(page.getByTestId("run-run-b").locator("[data-status=running]")).toBeVisible();
  await screenshot(page, "runs-bulk-refused");

  await bar.getByLabel("Tags to add or remove").fill("rev2, gusty");
  await bar.getByRole("button", { name: "Add tags" }).click();
  await expect(page.getByRole("status").filter({ hasText: "2 runs changed." })).toBeVisible();
  for (const name of ["run-a", "run-b"]) {
    await expect(page.getByTestId(`run-${name}`)).toContainText("gusty");
  }
  await expect(page.getByRole("region", { name: "Selected runs" })).toHaveCount(0);

  // Experiments likewise: one with a running run cannot finish; tags go on.
  await page.goto(`/projects/${projectId}/experiments`);
  await page.getByRole("checkbox", { name: "Select Wing E" }).check();
  const experiments = page.getByRole("region", { name: "Selected experiments" });
  await experiments.getByLabel("New status").selectOption("finished");
  await experiments.getByRole("button", { name: "Apply status" }).click();
  await expect(experiments.getByTestId("bulk-refused-Wing E")).toContainText("running runs");
  await experiments.getByLabel("Tags to add or remove").fill("campaign-7");
  await experiments.getByRole("button", { name: "Add tags" }).click();
  await expect(page.getByTestId("experiment-Wing E")).toContainText("campaign-7");
});
