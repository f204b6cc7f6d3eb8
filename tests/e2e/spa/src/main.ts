import { api, type Child, type Project } from "./api";
import { auth, currentUser } from "./auth";
import { watchJob } from "./jobs";
import { setUpYourData } from "./yourdata";
import "./style.css";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

function item(text: string, onClick?: () => void): HTMLLIElement {
  const li = document.createElement("li");
  li.textContent = text;
  if (onClick) {
    li.classList.add("clickable");
    li.addEventListener("click", onClick);
  }
  return li;
}

function showError(error: unknown): void {
  const detail = (error as { detail?: string })?.detail;
  $("error").textContent = detail ?? String(error);
}

// --- children ----------------------------------------------------------------------
async function loadChildren(): Promise<void> {
  const { data, error } = await api.GET("/v1/children");
  if (error) return showError(error);
  $("children").replaceChildren(...data.map((child) => item(child.name, () => showChild(child))));
}

async function showChild(child: Child): Promise<void> {
  $("child-detail").hidden = false;
  $("child-name").textContent = child.name;
  const query = { params: { query: { childId: child.id } } };
  const [affirmations, chores] = await Promise.all([
    api.GET("/v1/affirmations", query),
    api.GET("/v1/chores/daily", query),
  ]);
  if (affirmations.error || chores.error) return showError(affirmations.error ?? chores.error);
  // The best matches come first; a few are enough for the page.
  $("affirmations").replaceChildren(...affirmations.data.slice(0, 5).map((a) => item(a.text)));
  $("chores").replaceChildren(...chores.data.map((c) => item(c.title)));
}

$("child-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target as HTMLFormElement);
  const interests = String(form.get("interests") ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const { error } = await api.POST("/v1/children", {
    body: { name: String(form.get("name")), birthday: String(form.get("birthday")), interests },
  });
  if (error) return showError(error);
  (event.target as HTMLFormElement).reset();
  await loadChildren();
});

// --- projects, edited with If-Match -------------------------------------------------
let editing: { project: Project; etag: string } | null = null;

async function loadProjects(): Promise<void> {
  const { data, error } = await api.GET("/v1/projects", { params: { query: { limit: 50 } } });
  if (error) return showError(error);
  $("projects").replaceChildren(
    ...data.items.map((project) => item(project.name, () => void edit(project.id))),
  );
}

async function edit(projectId: string): Promise<void> {
  const { data, error, response } = await api.GET("/v1/projects/{project_id}", {
    params: { path: { project_id: projectId } },
  });
  if (error) return showError(error);
  editing = { project: data, etag: response.headers.get("ETag") ?? "" };
  const form = $<HTMLFormElement>("edit-form");
  form.hidden = false;
  $("conflict").hidden = true;
  (form.elements.namedItem("name") as HTMLInputElement).value = data.name;
  (form.elements.namedItem("description") as HTMLInputElement).value = data.description ?? "";
}

$("edit-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!editing) return;
  const form = new FormData(event.target as HTMLFormElement);
  const { error, response } = await api.PATCH("/v1/projects/{project_id}", {
    params: { path: { project_id: editing.project.id }, header: { "If-Match": editing.etag } },
    body: { name: String(form.get("name")), description: String(form.get("description")) },
  });
  if (response.status === 412) {
    $("conflict").hidden = false; // someone else saved first: show it, keep the form
    return;
  }
  if (error) return showError(error);
  $("edit-form").hidden = true;
  editing = null;
  await loadProjects();
});

$("conflict-reload").addEventListener("click", () => editing && void edit(editing.project.id));
$("edit-cancel").addEventListener("click", () => {
  $("edit-form").hidden = true;
  editing = null;
});

$("project-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target as HTMLFormElement);
  const { error } = await api.POST("/v1/projects", { body: { name: String(form.get("name")) } });
  if (error) return showError(error);
  (event.target as HTMLFormElement).reset();
  await loadProjects();
});

// --- a demo job with live progress --------------------------------------------------
$("start-job").addEventListener("click", async () => {
  const { data, error } = await api.POST("/v1/jobs", {
    body: { kind: "demo", params: { steps: 20, delay_ms: 300 } },
  });
  if (error) return showError(error);
  const bar = $<HTMLProgressElement>("job-progress");
  const watcher = watchJob(data.job_id, (message) => {
    bar.value = message.progress;
    $("job-status").textContent = `${message.status} (${message.progress} %)`;
  });
  (window as unknown as { spaJob: typeof watcher }).spaJob = watcher;
});

// --- start -------------------------------------------------------------------------
$("sign-in").addEventListener("click", () => void auth.signinRedirect());
$("sign-out").addEventListener("click", () => void auth.signoutRedirect());

const user = await currentUser().catch((error: unknown) => {
  showError(error);
  return null;
});
$("sign-in").hidden = user !== null;
$("sign-out").hidden = user === null;
$("app").hidden = user === null;
if (user) {
  $("who").textContent = `Signed in as ${user.profile.preferred_username}`;
  await Promise.all([loadChildren(), loadProjects()]);
  setUpYourData(user, async () => {
    $("child-detail").hidden = true;
    await Promise.all([loadChildren(), loadProjects()]);
  });
}
