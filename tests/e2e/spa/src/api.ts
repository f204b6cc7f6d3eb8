// The typed client: paths and bodies come from the API's /openapi.json (npm run gen).
import createClient, { type Middleware } from "openapi-fetch";
import { freshToken } from "./auth";
import { config } from "./config";
import type { components, paths } from "./schema";

export type Child = components["schemas"]["Child"];
export type Project = components["schemas"]["Project"];
export type Job = components["schemas"]["Job"];

const bearer: Middleware = {
  async onRequest({ request }) {
    request.headers.set("Authorization", `Bearer ${await freshToken()}`);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: config.apiUrl });
api.use(bearer);
