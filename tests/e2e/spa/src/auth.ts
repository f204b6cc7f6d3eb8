// Sign-in with oidc-client-ts: authorization code + PKCE against the issuer (Keycloak or
// the dev issuer), tokens refreshed with the refresh token before they expire.
import { UserManager, WebStorageStateStore, type User } from "oidc-client-ts";
import { config } from "./config";

const home = `${window.location.origin}/`;

export const auth = new UserManager({
  authority: config.authority,
  client_id: config.clientId,
  redirect_uri: home,
  post_logout_redirect_uri: home,
  scope: "openid profile email",
  automaticSilentRenew: true,
  userStore: new WebStorageStateStore({ store: window.sessionStorage }),
});

/** Finish a sign-in redirect if this page load is one; then the signed-in user, if any. */
export async function currentUser(): Promise<User | null> {
  const params = new URLSearchParams(window.location.search);
  if (params.has("code") && params.has("state")) {
    await auth.signinRedirectCallback();
    window.history.replaceState({}, "", home);
  }
  const user = await auth.getUser();
  return user && !user.expired ? user : null;
}

/** A usable access token: the stored one, or a fresh one from the refresh token. */
export async function freshToken(): Promise<string> {
  let user = await auth.getUser();
  if (!user || user.expired || (user.expires_in ?? 0) < 30) {
    user = await auth.signinSilent();
  }
  if (!user) throw new Error("signed out");
  return user.access_token;
}
