// The example SPA end to end, as alice then bob. Prints one JSON line of observations.
// usage: node spa-e2e.mjs '{"spa": URL, "api": URL, "issuer": URL, "shots": DIR, "tag": ".."}'
import { readFile } from "node:fs/promises";
import { args, launch, signIn, step } from "./browser.mjs";

const { spa, api, issuer, shots, tag } = args();
const result = { steps: [] };
const shot = (page, name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
const text = (page, selector) => page.locator(selector).allTextContents();

async function tokenFor(user) {
  const base = issuer.split("/realms/")[0];
  return (await fetch(`${base}/dev/token/${user}`, { headers: { "X-Dev-Issuer": "1" } })).text();
}

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.on("pageerror", (error) => step(`page error: ${error.message}`));
  const sockets = [];
  page.on("websocket", (ws) => sockets.push(ws.url()));
  let refreshes = 0;
  page.on("request", (request) => {
    if (request.method() === "POST" && (request.postData() ?? "").includes("grant_type=refresh_token")) {
      refreshes += 1;
    }
  });

  // Sign in as alice through the issuer's form (authorization code + PKCE).
  await page.goto(spa);
  await page.click("#sign-in");
  await page.waitForSelector("#username");
  result.loginUrl = page.url();
  await shot(page, "1-issuer-login");
  await signIn(page, "alice", "alice");
  await page.waitForSelector("#who:has-text('alice')");
  result.steps.push("signed in as alice");
  step("signed in as alice");

  // A child, then its affirmations and today's chores.
  const child = `Ada ${tag}`;
  await page.fill("#child-form [name=name]", child);
  await page.fill("#child-form [name=birthday]", "2017-05-01");
  await page.fill("#child-form [name=interests]", "space, dinosaurs");
  await page.click("#child-form button");
  await page.locator("#children li", { hasText: child }).click();
  await page.waitForSelector("#chores li");
  result.aliceChildren = await text(page, "#children li");
  result.affirmations = (await text(page, "#affirmations li")).length;
  result.chores = (await text(page, "#chores li")).length;
  await shot(page, "2-children");
  step(`child ${child}: ${result.affirmations} affirmations, ${result.chores} chores`);

  // A project: create, edit, then a conflicting edit made elsewhere -> 412 shown.
  const project = `Rocket ${tag}`;
  await page.fill("#project-form [name=name]", project);
  await page.click("#project-form button");
  await page.locator("#projects li", { hasText: project }).click();
  await page.fill("#edit-form [name=name]", `${project} v2`);
  await page.click("#edit-form button:has-text('Save')");
  await page.locator("#projects li", { hasText: `${project} v2` }).waitFor();
  result.edited = true;

  await page.locator("#projects li", { hasText: `${project} v2` }).click();
  await page.waitForSelector("#edit-form:not([hidden])");
  const auth = { Authorization: `Bearer ${await tokenFor("alice")}` };
  const listed = await (await fetch(`${api}/v1/projects?q=${encodeURIComponent(tag)}`, { headers: auth })).json();
  const id = listed.items[0].id;
  const other = await fetch(`${api}/v1/projects/${id}`, {
    method: "PATCH",
    headers: { ...auth, "Content-Type": "application/json" },
    body: JSON.stringify({ name: `${project} (other tab)` }),
  });
  result.otherTabStatus = other.status;
  await page.fill("#edit-form [name=description]", "typed while someone else saved");
  await page.click("#edit-form button:has-text('Save')");
  await page.waitForSelector("#conflict:not([hidden])");
  result.conflictShown = (await page.locator("#conflict").textContent()).trim();
  await shot(page, "3-project-conflict");
  await page.click("#conflict-reload");
  await page.waitForFunction(
    (name) => document.querySelector("#edit-form [name=name]").value === name,
    `${project} (other tab)`,
  );
  await page.fill("#edit-form [name=description]", "saved on top of their version");
  await page.click("#edit-form button:has-text('Save')");
  await page.waitForSelector("#edit-form", { state: "hidden" });
  await page.locator("#projects li", { hasText: `${project} (other tab)` }).waitFor();
  result.projects = await text(page, "#projects li");
  step("project conflict shown and resolved");

  // A demo job with live progress; the socket is dropped midway and must come back.
  await page.click("#start-job");
  await page.waitForFunction(() => document.querySelector("#job-progress").value >= 10, null, { timeout: 30000 });
  await shot(page, "4-job-progress");
  await page.evaluate(() => window.spaJob.drop());
  await page.waitForFunction(() => document.querySelector("#job-status").textContent.startsWith("complete"), null, { timeout: 60000 });
  result.jobStatus = await page.locator("#job-status").textContent();
  result.jobProgress = await page.locator("#job-progress").evaluate((el) => el.value);
  result.jobSockets = sockets.filter((url) => url.includes("/ws/jobs/"));
  result.refreshes = refreshes;
  await shot(page, "5-job-complete");
  step(`job ${result.jobStatus} over ${result.jobSockets.length} sockets`);

  // Your data: download it all, then delete it all after a confirmation naming what goes.
  const downloading = page.waitForEvent("download", { timeout: 60000 });
  await page.click("#download-data");
  const file = await downloading;
  const exported = JSON.parse(await readFile(await file.path(), "utf8"));
  result.exportFile = file.suggestedFilename();
  result.exportFormat = exported.format;
  result.exportChildren = exported.children.map((c) => c.name);
  result.exportJobs = exported.jobs.map((j) => j.kind);
  await page.click("#erase-data");
  await page.waitForSelector("#erase-confirm:not([hidden])");
  result.eraseConfirmation = await page.locator("#erase-what").textContent();
  await shot(page, "6-erase-confirmation");
  await page.click("#erase-yes");
  await page.waitForFunction(() => document.querySelector("#data-status").textContent.startsWith("Erased"), null, { timeout: 60000 });
  result.eraseStatus = await page.locator("#data-status").textContent();
  await page.waitForFunction(() => document.querySelectorAll("#children li").length === 0);
  result.childrenAfterErase = await text(page, "#children li");
  result.projectsAfterErase = await text(page, "#projects li");
  await shot(page, "7-erased");
  step(`downloaded ${result.exportFile}, then ${result.eraseStatus}`);

  // Sign out, sign in as bob: his own child (made here through the API), none of alice's.
  const bobAuth = { Authorization: `Bearer ${await tokenFor("bob")}`, "Content-Type": "application/json" };
  const bobChild = await fetch(`${api}/v1/children`, {
    method: "POST",
    headers: bobAuth,
    body: JSON.stringify({ name: `Bo ${tag}`, birthday: "2019-03-03" }),
  });
  result.bobChildStatus = bobChild.status;
  await page.click("#sign-out");
  await page.waitForSelector("#sign-in:not([hidden])");
  result.signedOut = true;
  await page.click("#sign-in");
  await page.waitForSelector("#username"); // the SSO session ended: the form again
  await signIn(page, "bob", "bob");
  await page.waitForSelector("#who:has-text('bob')");
  await page.waitForFunction(() => document.querySelector("#app").hidden === false);
  await page.locator("#children li").first().waitFor();
  result.bobChildren = await text(page, "#children li");
  await shot(page, "8-bob");
  step(`bob sees ${result.bobChildren.length} children`);
} catch (error) {
  result.error = String(error?.stack || error);
  for (const page of browser.contexts().flatMap((c) => c.pages())) {
    await page.screenshot({ path: `${shots}/failure-${Date.now()}.png` }).catch(() => {});
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + "\n");
