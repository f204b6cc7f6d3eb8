/** Projects: paged listing, CRUD with If-Match, and the legacy /projects aliases. */
import { type ApiClient, type Body, type Schemas, describeError } from "../client";

export type Project = Schemas["Project"];

function projectLine(project: Project): string {
  return `${project.id} ${project.name} — ${project.description ?? ""} (${project.tenant_id ?? "personal"}, ${project.created_at}/${project.updated_at})`;
}

export async function listProjects(
  api: ApiClient,
  page: { limit?: number; offset?: number; q?: string } = {},
  legacy = false,
): Promise<{ lines: string[]; total: number; next: number | null }> {
  const query = { ...page };
  const { data, error } = legacy
    ? await api.GET("/projects", { params: { query } })
    : await api.GET("/v1/projects", { params: { query } });
  if (error) throw new Error(describeError(error));
  const result: Body<"listProjects", 200> & Body<"listProjectsLegacy", 200> = data;
  const end = result.offset + result.items.length;
  return { lines: result.items.map(projectLine), total: result.total, next: end < result.total ? end : null };
}

export async function createProject(api: ApiClient, name: string, description?: string, legacy = false): Promise<Project> {
  const body: Schemas["ProjectCreate"] = description === undefined ? { name } : { name, description };
  const { data, error } = legacy
    ? await api.POST("/projects", { body })
    : await api.POST("/v1/projects", { body });
  if (error) throw new Error(describeError(error));
  const created: Body<"createProject", 201> & Body<"createProjectLegacy", 201> = data;
  return created;
}

export async function getProject(api: ApiClient, projectId: string, legacy = false): Promise<Project | null> {
  const params = { path: { project_id: projectId } };
  const { data, error, response } = legacy
    ? await api.GET("/projects/{project_id}", { params })
    : await api.GET("/v1/projects/{project_id}", { params });
  if (response.status === 404) return null;
  if (error) throw new Error(describeError(error));
  const project: Body<"getProject", 200> & Body<"getProjectLegacy", 200> = data;
  return project;
}

/** Renames a project, refusing to overwrite a change made since `etag` was read. */
export async function renameProject(
  api: ApiClient, projectId: string, name: string, etag?: string, legacy = false,
): Promise<Project> {
  const body: Schemas["ProjectPatch"] = { name };
  const params = { path: { project_id: projectId }, header: etag === undefined ? {} : { "If-Match": etag } };
  const { data, error } = legacy
    ? await api.PATCH("/projects/{project_id}", { params, body })
    : await api.PATCH("/v1/projects/{project_id}", { params, body });
  if (error) throw new Error(describeError(error));
  const updated: Body<"updateProject", 200> & Body<"updateProjectLegacy", 200> = data;
  return updated;
}

export async function deleteProject(api: ApiClient, projectId: string, legacy = false): Promise<boolean> {
  const params = { path: { project_id: projectId } };
  const { response } = legacy
    ? await api.DELETE("/projects/{project_id}", { params })
    : await api.DELETE("/v1/projects/{project_id}", { params });
  return response.status === 204;
}
