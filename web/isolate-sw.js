// Service worker that makes the page cross-origin isolated on any static server, also one
// that cannot send headers: ONNX Runtime Web runs WebAssembly threads only in an isolated
// page (SharedArrayBuffer). It re-serves every same-origin GET response with the two headers
// that isolate a page (COOP/COEP) and one that lets an isolated page load it (CORP).
// isolate.js registers it and reloads the page once when it takes control (docs/web.md).

const HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
};

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  const request = event.request;
  // Anything else goes to the network untouched: uploads (serve.py's API), other origins.
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
  if (request.cache === "only-if-cached" && request.mode !== "same-origin") return;
  event.respondWith(isolated(request));
});

async function isolated(request) {
  const response = await fetch(request);
  // Opaque responses and redirects (status 0) cannot be rebuilt; they pass as they are.
  if (response.status === 0) return response;
  const headers = new Headers(response.headers);
  for (const [name, value] of Object.entries(HEADERS)) headers.set(name, value);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
