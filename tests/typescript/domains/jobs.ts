/** Background jobs: start, read, list, abort, and the legacy /jobs aliases. */
import { type ApiClient, type Body, type Schemas, describeError } from "../client";

export type Job = Schemas["Job"];

function jobLine(job: Job): string {
  const outcome =
    job.result === null ? job.error ?? "" : job.result.kind === "demo" ? job.result.message : `exported ${job.result.exported_at}`;
  return `${job.job_id} ${job.kind} ${job.status} ${job.progress}% (${job.step}/${job.total_steps}) ${outcome} ${job.created_at}/${job.updated_at}`;
}

export async function startDemoJob(api: ApiClient, steps: number, delayMs: number, legacy = false): Promise<Job> {
  const body: Schemas["DemoJobRequest"] = { kind: "demo", params: { steps, delay_ms: delayMs } };
  const { data, error } = legacy ? await api.POST("/jobs", { body }) : await api.POST("/v1/jobs", { body });
  if (error) throw new Error(describeError(error));
  const job: Body<"createJob", 202> & Body<"createJobLegacy", 202> = data;
  return job;
}

// A parameter with a server-side default may be left out (openapi-typescript is run with
// --default-non-nullable=false; without it `delay_ms` would be required here).
export async function startDemoJobWithDefaults(api: ApiClient, steps?: number): Promise<Job> {
  const body: Schemas["DemoJobRequest"] = steps === undefined ? { kind: "demo" } : { kind: "demo", params: { steps } };
  const { data, error } = await api.POST("/v1/jobs", { body });
  if (error) throw new Error(describeError(error));
  return data;
}

export async function getJob(api: ApiClient, jobId: string, legacy = false): Promise<string | null> {
  const params = { path: { job_id: jobId } };
  const { data, error, response } = legacy
    ? await api.GET("/jobs/{job_id}", { params })
    : await api.GET("/v1/jobs/{job_id}", { params });
  if (response.status === 404) return null;
  if (error) throw new Error(describeError(error));
  const job: Body<"getJob", 200> & Body<"getJobLegacy", 200> = data;
  return jobLine(job);
}

export async function listJobs(api: ApiClient, status?: Job["status"], legacy = false): Promise<string[]> {
  const query = status === undefined ? {} : { status };
  const { data, error } = legacy
    ? await api.GET("/jobs", { params: { query } })
    : await api.GET("/v1/jobs", { params: { query } });
  if (error) throw new Error(describeError(error));
  const page: Body<"listJobs", 200> & Body<"listJobsLegacy", 200> = data;
  return [`${page.total} jobs from ${page.offset} (${page.limit} a page)`, ...page.items.map(jobLine)];
}

export async function abortJob(api: ApiClient, jobId: string, legacy = false): Promise<Job> {
  const params = { path: { job_id: jobId } };
  const { data, error } = legacy
    ? await api.DELETE("/jobs/{job_id}", { params })
    : await api.DELETE("/v1/jobs/{job_id}", { params });
  if (error) throw new Error(describeError(error));
  const job: Body<"abortJob", 202> & Body<"abortJobLegacy", 202> = data;
  return job;
}
