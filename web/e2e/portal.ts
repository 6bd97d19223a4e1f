// Page objects for the portal: each spec reads as the lab's story, not as selectors.
import { expect, test as base, type APIRequestContext, type Page } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

export const PASSWORD = "correct horse battery";
const SCREENSHOTS = process.env["ETP_SCREENSHOTS"] ?? join(import.meta.dirname, "..", "..", "build", "web", "screenshots");

export function uniqueName(prefix: string): string {
  return `${prefix}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

/** Registers a user through the API (no browser session); returns the username. */
export async function registerUser(request: APIRequestContext, prefix = "lab"): Promise<string> {
  const username = uniqueName(prefix);
  const response = await request.post("/api/v1/auth/register", {
    data: { username, email: `${username}@example.org`, password: PASSWORD },
  });
  expect(response.status(), await response.text()).toBe(201);
  return username;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

/** Fails the test on a Content-Security-Policy violation or an uncaught error in the page. */
export const test = base.extend<{ pageProblems: string[] }>({
  pageProblems: [
    async ({ page }, use) => {
      const problems: string[] = [];
      page.on("console", (message) => {
        if (message.type() === "error" && /Content.Security.Policy/i.test(message.text())) problems.push(message.text());
      });
      page.on("pageerror", (error) => problems.push(error.message));
      await use(problems);
      expect(problems, "CSP violations or uncaught errors in the page").toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };

export class Portal {
  constructor(readonly page: Page) {}

  async signIn(username: string, password = PASSWORD): Promise<void> {
    await this.page.goto("/signin");
    await this.page.getByLabel("Username or email").fill(username);
    await this.page.getByLabel("Password").fill(password);
    await this.page.getByRole("button", { name: "Sign in" }).click();
    await expect(this.page.getByRole("navigation", { name: "Workspace" })).toBeVisible();
  }

  async createProject(name: string): Promise<string> {
    await this.page.goto("/projects");
    await this.page.getByRole("button", { name: "New project" }).click();
    const dialog = this.page.getByRole("dialog", { name: "New project" });
    await dialog.getByLabel("Name").fill(name);
    await dialog.getByLabel("Description").fill("Aerodynamics of the wing family, tunnel WT-2.");
    await dialog.getByRole("button", { name: "Create project" }).click();
    await expect(this.page.getByRole("heading", { name: "Experiments" })).toBeVisible();
    return this.idFromUrl(/\/projects\/([0-9a-f-]{36})/);
  }

  async createExperiment(name: string, tags = "aero wing-b"): Promise<string> {
    await this.page.getByRole("button", { name: "New experiment" }).first().click();
    const dialog = this.page.getByRole("dialog", { name: "New experiment" });
    await dialog.getByLabel("Name").fill(name);
    await dialog.getByLabel("Description").fill("Lift and drag at 10–40 m/s.");
    await dialog.getByLabel("Tags").fill(tags);
    await dialog.getByLabel("Type").fill("wind_tunnel");
    await dialog.getByRole("button", { name: "Create experiment" }).click();
    await expect(this.page.getByRole("heading", { name })).toBeVisible();
    return this.idFromUrl(/\/experiments\/([0-9a-f-]{36})/);
  }

  async createRun(name: string, { params, env, gitSha }: { params: object; env: object; gitSha: string }): Promise<string> {
    await this.page.getByRole("button", { name: "New run" }).first().click();
    const dialog = this.page.getByRole("dialog", { name: "New run" });
    await dialog.getByLabel("Name").fill(name);
    await dialog.getByLabel("Git SHA").fill(gitSha);
    await dialog.getByLabel("Parameters (JSON)").fill(JSON.stringify(params));
    await dialog.getByLabel("Environment (JSON)").fill(JSON.stringify(env));
    await dialog.getByLabel("Tags").fill("baseline");
    await dialog.getByRole("button", { name: "Create run" }).click();
    await expect(this.page.getByRole("heading", { name })).toBeVisible();
    return this.idFromUrl(/\/runs\/([0-9a-f-]{36})/);
  }

  statusButton(group: "Experiment status" | "Run status", label: string) {
    return this.page.getByRole("group", { name: group }).getByRole("button", { name: label });
  }

  async toast(text: string | RegExp) {
    const toast = this.page.getByRole("alert").filter({ hasText: text });
    await expect(toast).toBeVisible();
    return toast;
  }

  private idFromUrl(pattern: RegExp): string {
    const match = pattern.exec(this.page.url());
    if (!match?.[1]) throw new Error(`no id in ${this.page.url()}`);
    return match[1];
  }
}
