/** Children: list, read, create-or-replace, delete. */
import { type ApiClient, type Body, type Schemas, describeError } from "../client";

export type Child = Schemas["Child"];

export async function listChildren(api: ApiClient): Promise<Child[]> {
  const { data, error } = await api.GET("/v1/children");
  if (error) throw new Error(describeError(error));
  const children: Body<"listChildren", 200> = data;
  return [...children].sort((a, b) => a.name.localeCompare(b.name));
}

export async function getChild(api: ApiClient, childId: string): Promise<Child | null> {
  const { data, error, response } = await api.GET("/v1/children/{child_id}", {
    params: { path: { child_id: childId } },
  });
  if (response.status === 404) return null;
  if (error) throw new Error(describeError(error));
  const child: Body<"getChild", 200> = data;
  return child;
}

/** Creates (201) or replaces (200) a child; a missing id asks the server to make one. */
export async function saveChild(
  api: ApiClient,
  child: { id?: string; name: string; birthday: string; interests?: string[]; avatar?: string | null },
): Promise<{ child: Child; created: boolean }> {
  const body: Schemas["ChildUpsert"] = { name: child.name, birthday: child.birthday };
  if (child.id !== undefined) body.id = child.id;
  if (child.interests !== undefined) body.interests = child.interests;
  if (child.avatar !== undefined) body.avatar = child.avatar;
  const { data, error, response } = await api.POST("/v1/children", { body });
  if (error) throw new Error(describeError(error));
  const saved: Body<"upsertChild", 200> | Body<"upsertChild", 201> = data;
  const age = new Date().getUTCFullYear() - Number(saved.birthday.slice(0, 4));
  console.debug(`${saved.name}, about ${age}, likes ${saved.interests.join(", ") || "nothing yet"}`,
    saved.avatar ?? "no avatar", saved.created_at, saved.updated_at);
  return { child: saved, created: response.status === 201 };
}

export async function deleteChild(api: ApiClient, childId: string): Promise<boolean> {
  const { response } = await api.DELETE("/v1/children/{child_id}", {
    params: { path: { child_id: childId } },
  });
  return response.status === 204;
}
