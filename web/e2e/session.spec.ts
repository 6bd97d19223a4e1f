// The browser session: CSRF double-submit enforced by the gateway, sign out, and a shared link
// that asks for a sign-in first and then opens.
import { expect, Portal, registerUser, test } from "./portal";

test("an unsafe request without the CSRF header is refused; with it, it passes", async ({ page, request }) => {
  const portal = new Portal(page);
  await portal.signIn(await registerUser(request));

  const answers = await page.evaluate(async () => {
    const body = JSON.stringify({ name: "Forged" });
    const headers = { "Content-Type": "application/json" };
    const forged = await fetch("/api/v1/projects", { method: "POST", headers, body });
    const token = document.cookie.split("; ").find((item) => item.startsWith("csrf_token="))?.slice("csrf_token=".length) ?? "";
    const real = await fetch("/api/v1/projects", { method: "POST", headers: { ...headers, "X-CSRF-Token": token }, body });
    return { forged: { status: forged.status, body: await forged.json() }, real: real.status };
  });

  expect(answers.forged.status).toBe(403);
  expect(answers.forged.body.code).toBe("csrf_token");
  expect(answers.real).toBe(201);
});

test("sign out ends the session; a shared link signs in first and then opens", async ({ page, request }) => {
  const portal = new Portal(page);
  const username = await registerUser(request);
  await portal.signIn(username);
  const projectId = await portal.createProject("Shared");
  const link = `/projects/${projectId}/members`;

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/signin$/);
  const me = await page.evaluate(async () => (await fetch("/auth/me")).status);
  expect(me).toBe(401);

  await page.goto(link);
  await expect(page).toHaveURL(/\/signin\?next=/);
  await page.getByLabel("Username or email").fill(username);
  await page.getByLabel("Password").fill("correct horse battery");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(new RegExp(`${link}$`));
  await expect(page.getByRole("heading", { name: "Members" })).toBeVisible();
});

test("a wrong password is a toast with the request id", async ({ page, request }) => {
  const username = await registerUser(request);
  await page.goto("/signin");
  await page.getByLabel("Username or email").fill(username);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  const toast = page.getByRole("alert");
  await expect(toast).toContainText("invalid_credentials");
  await expect(toast.getByTestId("request-id")).not.toBeEmpty();
  await expect(page).toHaveURL(/\/signin$/);
});

test("the project switcher moves to the same section of another project", async ({ page, request }) => {
  const portal = new Portal(page);
  await portal.signIn(await registerUser(request));
  const first = await portal.createProject("Engine bench");
  const second = await portal.createProject("Wind tunnel");

  await page.getByRole("link", { name: "Members" }).click();
  await expect(page).toHaveURL(new RegExp(`/projects/${second}/members$`));
  await page.getByRole("combobox", { name: "Project" }).selectOption({ label: "Engine bench" });
  await expect(page).toHaveURL(new RegExp(`/projects/${first}/members$`));
  await expect(page.getByRole("main").locator(".eyebrow")).toHaveText("Engine bench");

  // `/` opens the project used last.
  await page.goto("/");
  await expect(page).toHaveURL(new RegExp(`/projects/${first}/experiments$`));
});
