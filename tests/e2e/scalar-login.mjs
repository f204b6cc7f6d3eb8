// Scalar's auth panel: sign in through the issuer with PKCE. Prints one JSON line with
// what the page showed. (Scalar does not keep this token across a reload: the panel's
// configured values win over its stored ones, so only Swagger UI's sign-in survives one.)
// usage: node scalar-login.mjs '{"docs": URL, "username": .., "password": .., "shots": DIR}'
import { args, launch, signIn, step } from "./browser.mjs";

const { docs, username, password, shots } = args();
const browser = await launch();
const result = {};
const accessToken = (page) =>
  page.evaluate(() => {
    const field = [...document.querySelectorAll("input")].find((i) => i.value.split(".").length === 3);
    return field ? field.value : null;
  });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (error) => step(`page error: ${error.message}`));
  await page.goto(docs);
  const authorize = page.getByRole("button", { name: "Authorize", exact: true });
  await authorize.waitFor();
  result.panel = await page.evaluate(() => document.body.innerText.includes("app-spa"));
  const [popup] = await Promise.all([context.waitForEvent("page"), authorize.click()]);
  result.loginUrl = popup.url();
  step(`popup opened at ${popup.url()}`);
  // Listen before signing in: the popup may close as soon as the form is sent.
  const closed = popup.waitForEvent("close", { timeout: 30000 });
  await signIn(popup, username, password);
  await closed;
  await page.getByRole("button", { name: "Clear tokens" }).waitFor({ timeout: 20000 });
  const token = await accessToken(page);
  result.claims = token ? JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()) : null;
  await page.screenshot({ path: `${shots}/scalar-signed-in.png` });
  step("signed in");

} catch (error) {
  result.error = String(error?.stack || error);
  for (const page of browser.contexts().flatMap((c) => c.pages())) {
    await page.screenshot({ path: `${shots}/scalar-failure-${Date.now()}.png` }).catch(() => {});
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + "\n");
