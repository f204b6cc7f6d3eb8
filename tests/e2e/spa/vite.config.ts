import { defineConfig } from "vite";

// The SPA's origin must be in the API's CORS_ORIGINS and among the issuer's redirect
// URIs: http://localhost:5173 is the default of both.
export default defineConfig({
  server: { port: 5173, strictPort: true },
  preview: { port: 5173, strictPort: true },
});
