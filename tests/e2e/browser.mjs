// Shared by the browser tests: Debian's Chromium through playwright-core, offline.
import { chromium } from "playwright-core";

// Quiet, offline, throwaway: no sandbox (CI runs as root), nothing fetched in the
// background, and every host name but the loopback addresses fails to resolve, so a
// page that needs the internet shows it.
const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-extensions",
  "--disable-default-apps",
  "--no-first-run",
  "--no-default-browser-check",
  "--password-store=basic",
  "--use-mock-keychain",
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
];

export async function launch() {
  const executablePath = process.env.CHROMIUM;
  if (!executablePath) throw new Error("CHROMIUM (the browser's path) is not set");
  return chromium.launch({ executablePath, headless: true, args: FLAGS });
}

/** Fill the issuer's login form (the dev issuer's or Keycloak's: same ids). */
export async function signIn(page, username, password) {
  await page.waitForSelector("#username");
  await page.fill("#username", username);
  await page.fill("#password", password);
  await page.click("#kc-login");
}

/** Read the test's arguments: one JSON object on argv[2]. */
export function args() {
  return JSON.parse(process.argv[2]);
}

/** Every step logs a line, so a failure says how far it got. */
export function step(message) {
  process.stderr.write(`[browser] ${message}\n`);
}
