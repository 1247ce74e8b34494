"""The page that ``--serve`` shows: source, camera and result side by side, the figures of
/stats below them, and a button for POST /reset (with why, when it is refused)."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>fomm-tf live</title>
<style>
  body { font-family: sans-serif; margin: 1.5em; background: #f4f4f4; color: #222; }
  .row { display: flex; gap: 1em; flex-wrap: wrap; }
  figure { margin: 0; background: #fff; padding: .5em; border-radius: 6px;
           box-shadow: 0 1px 3px #0002; }
  img { width: 320px; height: 320px; object-fit: contain; background: #000; display: block; }
  figcaption { text-align: center; margin-top: .3em; }
  #stats { font-family: monospace; margin-top: 1em; white-space: pre; }
  button { margin-top: 1em; font-size: 1em; padding: .3em 1em; }
</style>
</head>
<body>
<h1>fomm-tf live</h1>
<div class="row">
  <figure><img src="/source.jpg" alt="source"><figcaption>source</figcaption></figure>
  <figure><img src="/camera.mjpg" alt="camera"><figcaption>camera</figcaption></figure>
  <figure><img src="/result.mjpg" alt="result"><figcaption>result</figcaption></figure>
</div>
<button id="reset" title="the next camera frame becomes the reference (key r)">
  reset reference</button> <span id="refused"></span>
<div id="stats"></div>
<script>
  document.getElementById("reset").onclick = async () => {
    const answer = await (await fetch("/reset", {method: "POST"})).json();
    document.getElementById("refused").textContent = answer.reset ? "" : answer.error;
  };
  async function stats() {
    try {
      const s = await (await fetch("/stats")).json();
      document.getElementById("stats").textContent =
        `${s.fps ?? "-"} frames/s   latency p50 ${s.latency_ms.p50 ?? "-"} ms, ` +
        `p95 ${s.latency_ms.p95 ?? "-"} ms   in ${s.frames_in}, out ${s.frames_out}, ` +
        `dropped ${s.dropped}   ${s.backend}`;
    } catch (error) {
      document.getElementById("stats").textContent = "stopped";
    }
  }
  stats();
  setInterval(stats, 1000);
</script>
</body>
</html>
"""
