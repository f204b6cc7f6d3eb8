// Where the API and the token issuer are; set at build time (Vite's import.meta.env).
export const config = {
  apiUrl: import.meta.env.VITE_API_URL ?? "http://127.0.0.1:8000",
  authority: import.meta.env.VITE_OIDC_AUTHORITY ?? "http://127.0.0.1:8081/realms/app",
  clientId: import.meta.env.VITE_OIDC_CLIENT_ID ?? "app-spa",
};
