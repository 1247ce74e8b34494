// Loaded first by index.html (a classic script, before the modules): makes the page cross-origin
// isolated where the server does not (isolate-sw.js adds the headers), so that ONNX Runtime
// Web can run one WebAssembly thread per core. window.fommIsolation says how it went:
// "pending" (registering, or reloading once the service worker controls the page),
// "isolated", or "unavailable: why" (the page then runs on one thread).
(() => {
  const RELOADED = "fomm-isolate-reloaded"; // sessionStorage: reload at most once per tab
  const report = (state) => (window.fommIsolation = state);
  if (window.crossOriginIsolated) {
    sessionStorage.removeItem(RELOADED);
    report("isolated");
    return;
  }
  if (!window.isSecureContext || !navigator.serviceWorker) {
    report("unavailable: service workers need https:// (or http:// on localhost)");
    return;
  }
  if (sessionStorage.getItem(RELOADED)) {
    report("unavailable: the service worker did not isolate the page; serve COOP/COEP headers (docs/web.md)");
    return;
  }
  report("pending");
  let reloading = false;
  const reload = () => {
    if (reloading) return;
    reloading = true;
    sessionStorage.setItem(RELOADED, "1");
    location.reload();
  };
  // A first visit: the worker installs, claims the page, and the page reloads through it.
  navigator.serviceWorker.addEventListener("controllerchange", reload);
  const url = new URL("isolate-sw.js", document.currentScript.src);
  navigator.serviceWorker.register(url).then(
    (registration) => {
      // Already active, but this document did not come through it (a hard reload).
      if (registration.active) reload();
    },
    (error) => report(`unavailable: the service worker did not register (${error.message})`),
  );
  setTimeout(() => {
    if (!reloading && window.fommIsolation === "pending") {
      report("unavailable: the service worker did not take control within 10 s");
    }
  }, 10000);
})();
