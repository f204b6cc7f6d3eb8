/**
 * A small SPA-style client of the API, type-checked against types generated from
 * /openapi.json (scripts/check_ts_client.py runs openapi-typescript, then `tsc --noEmit`).
 *
 * This file and domains/*.ts call every operation of the document with openapi-fetch and
 * read the fields a frontend would read, so a renamed field, a changed type, a renamed
 * operation id or a removed endpoint fails the compile. When you add an endpoint, add a
 * typed call to its domain's file (the check lists operations nobody calls yet). A domain
 * file none of whose paths are in the document yet (its branch not merged) is left out.
 */
import createClient from "openapi-fetch";
import type { components, operations, paths } from "./generated/api";

export type Schemas = components["schemas"];
/** The JSON body an operation answers with a given status: ties each call to its operation id. */
export type Body<Id extends keyof operations, Status extends keyof operations[Id]["responses"]> =
  operations[Id]["responses"][Status] extends { content: { "application/json": infer T } } ? T : never;

export type ApiError = Schemas["Error"];

export function apiClient(baseUrl: string, token: string) {
  return createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
}
export type ApiClient = ReturnType<typeof apiClient>;

/** What a frontend shows when a call fails: the sentence, plus the fields to highlight. */
export function describeError(error: ApiError): string {
  const fields = Array.isArray(error.extra)
    ? error.extra.map((item) => String(item["key"] ?? "")).filter(Boolean)
    : [];
  return fields.length ? `${error.detail} (${fields.join(", ")})` : `${error.status_code}: ${error.detail}`;
}

// --- health ---------------------------------------------------------------------------

export async function isAlive(api: ApiClient): Promise<boolean> {
  const { data } = await api.GET("/health");
  const live: Body<"liveness", 200> | undefined = data;
  return live?.status === "ok";
}

export async function readiness(api: ApiClient): Promise<Record<string, string>> {
  const { data, error } = await api.GET("/health/ready");
  // 503 documents the same body: the checks say which service is down.
  const body: Body<"readiness", 200> | Body<"readiness", 503> | undefined = data ?? error;
  const status: "ok" | "unavailable" | undefined = body?.status;
  return { status: status ?? "unknown", ...(body?.checks ?? {}) };
}

// --- current user ---------------------------------------------------------------------

export interface Profile {
  id: string;
  displayName: string;
  isAdmin: boolean;
  tenant: string | null;
  clientRoles: string[];
}

function toProfile(me: Schemas["CurrentUser"]): Profile {
  return {
    id: me.sub,
    displayName: me.name ?? me.username ?? me.email ?? me.sub,
    isAdmin: me.realm_roles.includes("admin"),
    tenant: me.tenant_id,
    clientRoles: Object.entries(me.client_roles).flatMap(([client, roles]) =>
      roles.roles.map((role) => `${client}:${role}`),
    ),
  };
}

export async function currentUser(api: ApiClient): Promise<Profile> {
  const { data, error } = await api.GET("/v1/me");
  if (error) throw new Error(describeError(error));
  const me: Body<"getMe", 200> = data;
  return toProfile(me);
}

/** The legacy alias answers exactly like /v1/me. */
export async function currentUserLegacy(api: ApiClient): Promise<Profile> {
  const { data, error } = await api.GET("/me");
  if (error) throw new Error(describeError(error));
  const me: Body<"getMeLegacy", 200> = data;
  return toProfile(me);
}

/** Erase everything kept about the caller ("Your data"): an `erase` job, followed like any
 *  other, whose result is a receipt with counts per kind. `sub` confirms it. */
export async function eraseMyData(api: ApiClient, sub: string): Promise<Body<"eraseMyData", 202>> {
  const body: Schemas["EraseRequest"] = { confirm: sub };
  const { data, error } = await api.POST("/v1/me/erase", { body });
  if (error) throw new Error(describeError(error));
  return data;
}
