// "Your data": download everything the service keeps about you (an export job), or
// erase it all (POST /v1/me/erase) after a confirmation that names what goes.
import type { User } from "oidc-client-ts";
import { api, type Job } from "./api";
import { watchJob } from "./jobs";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

/** Follow a job over its socket until it finishes; then its final state (with result). */
function finished(jobId: string, status: HTMLElement): Promise<Job> {
  return new Promise((resolve, reject) => {
    watchJob(jobId, (message) => {
      status.textContent = `${message.status} (${message.progress} %)`;
      if (!["complete", "failed", "aborted"].includes(message.status)) return;
      void api
        .GET("/v1/jobs/{job_id}", { params: { path: { job_id: jobId } } })
        .then(({ data, error }) => (data ? resolve(data) : reject(error)));
    });
  });
}

function save(name: string, document_: unknown): void {
  const blob = new Blob([JSON.stringify(document_, null, 2)], { type: "application/json" });
  const link = Object.assign(document.createElement("a"), {
    href: URL.createObjectURL(blob),
    download: name,
  });
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000); // once the browser has it
}

async function download(): Promise<void> {
  const status = $("data-status");
  const { data, error } = await api.POST("/v1/jobs", { body: { kind: "export", params: {} } });
  if (error) throw error;
  const job = await finished(data.job_id, status);
  if (job.result?.kind !== "export") throw new Error(job.error ?? "the export failed");
  save(`my-data-${job.result.exported_at.slice(0, 10)}.json`, job.result);
  status.textContent = `Downloaded: ${job.result.children.length} children, ${job.result.projects.length} projects, ${job.result.jobs?.length ?? 0} jobs`;
}

/** What an erasure removes, by name where there are names, for the confirmation. */
async function whatGoes(): Promise<string> {
  const [children, jobs] = await Promise.all([
    api.GET("/v1/children"),
    api.GET("/v1/jobs", { params: { query: { limit: 100 } } }),
  ]);
  const names = (children.data ?? []).map((child) => child.name);
  const children_ = names.length === 1 ? "your child" : `your ${names.length} children`;
  const kids = names.length ? `${children_} (${names.join(", ")}) and everything about them` : "no children";
  return (
    `This deletes for good: ${kids}; your ${jobs.data?.total ?? 0} jobs; the projects you created ` +
    `without a tenant. Projects in your tenant stay with it, without your name. It cannot be undone.`
  );
}

export function setUpYourData(user: User, reload: () => Promise<void>): void {
  const fail = (error: unknown) => {
    $("data-status").textContent = `Failed: ${(error as { detail?: string })?.detail ?? String(error)}`;
  };
  $("download-data").addEventListener("click", () => void download().catch(fail));
  $("erase-data").addEventListener("click", async () => {
    $("erase-what").textContent = await whatGoes();
    $("erase-confirm").hidden = false;
  });
  $("erase-no").addEventListener("click", () => ($("erase-confirm").hidden = true));
  $("erase-yes").addEventListener("click", async () => {
    $("erase-confirm").hidden = true;
    const { data, error } = await api.POST("/v1/me/erase", { body: { confirm: user.profile.sub } });
    if (error) return fail(error);
    const job = await finished(data.job_id, $("data-status")).catch(fail);
    if (!job || job.result?.kind !== "erase") return fail(job?.error ?? "the erasure failed");
    const counts = Object.entries(job.result.counts).map(([kind, n]) => `${kind} ${n}`);
    $("data-status").textContent = `Erased (receipt ${job.result.receipt_id}): ${counts.join(", ")}`;
    await reload();
  });
}
