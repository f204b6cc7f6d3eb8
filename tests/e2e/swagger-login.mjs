// Swagger UI's "Authorize": sign in through the issuer with PKCE, then "Try it out" on
// GET /v1/me. Prints one JSON line with what the page showed.
// usage: node swagger-login.mjs '{"docs": URL, "username": .., "password": .., "shots": DIR}'
import { args, launch, signIn, step } from "./browser.mjs";

const { docs, username, password, shots } = args();
const browser = await launch();
const result = {};
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (error) => step(`page error: ${error.message}`));
  page.on("console", (message) => step(`console ${message.type()}: ${message.text()}`));
  await page.goto(docs);
  await page.waitForSelector(".swagger-ui .btn.authorize");
  step("Swagger UI loaded");

  await page.click(".swagger-ui .btn.authorize");
  const scheme = page.locator(".auth-container", { hasText: "KeycloakLogin" });
  await scheme.waitFor();
  await page.screenshot({ path: `${shots}/swagger-authorize.png` });
  result.clientId = await scheme.locator("input[data-name=clientId]").inputValue();
  const [popup] = await Promise.all([
    context.waitForEvent("page"),
    scheme.locator("button.authorize").click(),
  ]);
  step(`popup opened at ${popup.url()}`);
  result.loginUrl = popup.url();
  await popup.waitForSelector("#username");
  await popup.screenshot({ path: `${shots}/issuer-login.png` });
  // Listen before signing in: the popup may close as soon as the form is sent.
  const closed = popup.waitForEvent("close", { timeout: 30000 });
  await signIn(popup, username, password);
  await closed;
  step("signed in; popup closed");

  await page.locator(".modal-ux button", { hasText: "Logout" }).waitFor({ timeout: 20000 });
  result.authorized = true;
  await page.screenshot({ path: `${shots}/swagger-authorized.png` });
  await page.click(".modal-ux button.close-modal");

  async function tryMe() {
    const operation = page.locator("[id$='-getMe']").first();
    await operation.waitFor();
    if (!(await operation.evaluate((el) => el.classList.contains("is-open")))) {
      await operation.locator(".opblock-summary").first().click();
    }
    const tryOut = operation.locator("button.try-out__btn");
    if ((await tryOut.textContent())?.includes("Try it out")) await tryOut.click();
    await operation.locator("button.execute").click();
    const status = operation.locator(".live-responses-table .response .response-col_status");
    await status.first().waitFor({ timeout: 20000 });
    const body = await operation.locator(".live-responses-table .microlight").first().textContent();
    await operation.locator(".live-responses-table").first().scrollIntoViewIfNeeded();
    return { status: (await status.first().textContent()).trim(), body };
  }

  const first = await tryMe();
  step(`GET /v1/me answered ${first.status}`);
  result.status = first.status;
  result.body = JSON.parse(first.body);
  await page.screenshot({ path: `${shots}/swagger-me-200.png`, fullPage: false });

  // The sign-in survives a reload (persistAuthorization).
  await page.reload();
  await page.waitForSelector(".swagger-ui .btn.authorize");
  const again = await tryMe();
  step(`after a reload GET /v1/me answered ${again.status}`);
  result.statusAfterReload = again.status;
} catch (error) {
  result.error = String(error?.stack || error);
  for (const page of browser.contexts().flatMap((c) => c.pages())) {
    await page.screenshot({ path: `${shots}/failure-${Date.now()}.png` }).catch(() => {});
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + "\n");
