// "Run on this server": when serve.py serves the page (docs/serve.md), the chosen files go
// to its API and the result comes back as an MP4, for phones and machines too slow for the
// in-browser runtime. On a plain static server /healthz is missing and nothing shows. It
// needs nothing of app.js (nor its runtime): with no file picked it sends the example's.

const $ = (id) => document.getElementById(id);
const POLL_MS = 500;

function say(text, done = 0, total = 1) {
  $("progress").max = total || 1;
  $("progress").value = done;
  $("progress-text").textContent = text;
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

async function call(path, options = {}) {
  const token = $("server-token").value.trim();
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const response = await fetch(path, { ...options, headers });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error || `the server answered ${response.status}`);
  }
  return response;
}

/** The picked file of input ``id``, else the example file ``name``. */
async function chosen(id, name) {
  const picked = $(id).files[0];
  if (picked) return picked;
  const response = await fetch(`example/${name}`);
  if (!response.ok) throw new Error(`pick a file for ${id} (example/${name} is not served here)`);
  return new File([await response.blob()], name);
}

async function runOnServer() {
  showMessage("");
  let source, driving;
  try {
    [source, driving] = [await chosen("source", "source.png"), await chosen("driving", "driving.mp4")];
  } catch (error) {
    return showMessage(error.message);
  }
  const form = new FormData();
  form.append("source", source);
  form.append("driving", driving);
  form.append("relative", $("relative").checked);
  form.append("adapt_scale", $("adapt").checked);
  if (Number($("max-frames").value) > 0) form.append("frames", $("max-frames").value);
  $("run-server").disabled = true;
  try {
    say("uploading…");
    const job = await (await call("v1/animations", { method: "POST", body: form })).json();
    for (;;) {
      const state = await (await call(job.status_url)).json();
      if (state.status === "failed") throw new Error(state.error);
      if (state.status === "done") break;
      say(`on the server: ${state.status}, ${state.frames_done} of ${state.frames_total ?? "?"} frames`, state.frames_done, state.frames_total);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    const video = await (await call(`${job.status_url}/result`)).blob();
    if ($("download-webm").href) URL.revokeObjectURL($("download-webm").href);
    $("download-webm").href = URL.createObjectURL(video);
    $("download-webm").download = "result.mp4";
    $("download-webm").textContent = "download MP4";
    $("download-png").hidden = true;
    $("result-video").src = $("download-webm").href;
    $("result").hidden = false;
    say("done on the server", 1, 1);
  } catch (error) {
    showMessage(`The server could not animate: ${error.message}`);
  } finally {
    $("run-server").disabled = false;
  }
}

fetch("healthz")
  .then((response) => response.json())
  .then((health) => {
    if (health.status !== "ok") return;
    $("server").hidden = false;
    $("run-server").addEventListener("click", runOnServer);
  })
  .catch(() => {}); // not served by serve.py
