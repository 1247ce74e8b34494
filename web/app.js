// The page a person uses: pick a model, a source image and a driving video, animate, watch
// source | driving | result, download the result as WebM or PNG frames.

import { BATCH_SIZE, FommError, listModels, loadModel, startAnimation, threads } from "./fomm.js";
import { zip } from "./zip.js";

const $ = (id) => document.getElementById(id);
// How long a video may take to load or seek before the page says it cannot decode it.
const VIDEO_TIMEOUT_MS = 15000;

const state = { source: null, driving: null, choosing: null, running: false, stop: false, replay: null };

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

function setProgress(done, total, text) {
  $("progress").max = total || 1;
  $("progress").value = done;
  $("progress-text").textContent = text;
}

async function fillModels() {
  const models = await listModels();
  const select = $("model");
  select.textContent = "";
  const wanted = new URLSearchParams(location.search).get("model");
  const names = models.map((m) => m.name);
  if (wanted && !names.includes(wanted)) names.unshift(wanted); // its load will say what is wrong
  for (const name of names) {
    const option = document.createElement("option");
    const info = models.find((m) => m.name === name);
    option.value = name;
    option.textContent = info ? `${name} (${info.weights}, ${(info.size_bytes / 2 ** 20).toFixed(1)} MiB)` : name;
    select.append(option);
  }
  if (wanted) select.value = wanted;
  if (!names.length) {
    showMessage("No model is built for the web yet: run python build.py --model NAME --web, then reload this page.");
  }
}

function frameShape(model) {
  const [h, w] = model.description.frame_shape;
  return [h, w];
}

/** The image scaled to w x h (the browser's high-quality smoothing), as ImageData. */
function scaled(source, w, h, canvas = document.createElement("canvas")) {
  canvas.width = w;
  canvas.height = h;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = "high";
  context.drawImage(source, 0, 0, w, h);
  return context.getImageData(0, 0, w, h);
}

function draw(canvas, image) {
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext("2d").putImageData(image, 0, 0);
}

async function readSource(file, w, h) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new FommError(`"${file.name}" is not an image this browser can read: give a PNG or JPEG.`);
  }
  const image = scaled(bitmap, w, h, $("source-view"));
  bitmap.close();
  return image;
}

/** Waits for `event` on `target`; rejects on its "error" event or after the timeout. */
function waitFor(target, event, what) {
  return new Promise((resolve, reject) => {
    const done = (error) => {
      clearTimeout(timer);
      target.removeEventListener(event, ok);
      target.removeEventListener("error", failed);
      error ? reject(error) : resolve();
    };
    const ok = () => done();
    const failed = () => done(new FommError(`${what}: the browser cannot decode it (${target.error?.message || "unsupported format"}). Give an MP4 (H.264) or WebM (VP8/VP9) video.`));
    const timer = setTimeout(() => done(new FommError(`${what}: the browser did not decode it within ${VIDEO_TIMEOUT_MS / 1000} s. Give an MP4 (H.264) or WebM (VP8/VP9) video.`)), VIDEO_TIMEOUT_MS);
    target.addEventListener(event, ok);
    target.addEventListener("error", failed);
  });
}

/** A <video> of the driving file, its metadata loaded; rejects with a clear message when the
 * browser cannot decode it. */
async function openVideo(file) {
  const video = document.createElement("video");
  video.muted = true;
  video.preload = "auto";
  const what = `"${file.name}"`;
  const loaded = waitFor(video, "loadeddata", what);
  video.src = URL.createObjectURL(file);
  await loaded;
  if (!video.videoWidth || !video.videoHeight) {
    throw new FommError(`${what} has no video track the browser can show. Give a video file with frames.`);
  }
  if (!Number.isFinite(video.duration) || video.duration <= 0) {
    throw new FommError(`${what} has no duration the browser can read. Give an MP4 or WebM video.`);
  }
  return video;
}

/** The video's frame rate, from the media times of the frames it presents while it plays
 * (the browser does not tell it otherwise); null if it cannot be seen within 3 s. */
async function detectFps(video) {
  if (!video.requestVideoFrameCallback) return null;
  const times = [];
  const seen = new Promise((resolve) => {
    const timer = setTimeout(resolve, 3000);
    const frame = (_, meta) => {
      times.push(meta.mediaTime);
      if (times.length >= 12) {
        clearTimeout(timer);
        resolve();
      } else video.requestVideoFrameCallback(frame);
    };
    video.requestVideoFrameCallback(frame);
  });
  try {
    await video.play();
    await seen;
  } catch {
    return null;
  } finally {
    video.pause();
  }
  const steps = times.slice(1).map((t, i) => t - times[i]).filter((d) => d > 1e-4);
  if (!steps.length) return null;
  const fps = 1 / Math.min(...steps); // frames dropped while playing only make steps longer
  return fps > 0 && fps <= 240 ? Math.round(fps * 1000) / 1000 : null;
}

async function chooseDriving(file) {
  state.driving = file;
  if (!file) return;
  showMessage("");
  try {
    const video = await openVideo(file);
    const fps = await detectFps(video);
    URL.revokeObjectURL(video.src);
    if (fps) $("fps").value = fps;
    setProgress(0, 1, `${file.name}: ${video.duration.toFixed(2)} s` + (fps ? `, ${fps} frames/s` : ", frame rate unknown: set frames/s"));
  } catch (error) {
    showMessage(error.message);
  }
}

/** Driving frames i = 0, 1, ... at the given frame rate, read by seeking to the middle of
 * each frame's display time. */
async function* videoFrames(video, fps, count, w, h) {
  const canvas = $("driving-view");
  for (let i = 0; i < count; i++) {
    const seeked = waitFor(video, "seeked", "the driving video");
    video.currentTime = Math.min((i + 0.5) / fps, video.duration);
    await seeked;
    yield scaled(video, w, h, canvas);
  }
}

async function animate() {
  showMessage("");
  if (state.running) return;
  stopReplay();
  const name = $("model").value;
  try {
    await state.choosing; // the driving video's frame rate, when it is still being measured
    if (!name) throw new FommError("No model is chosen: build one with python build.py --model NAME --web.");
    if (!state.source) throw new FommError("Pick a source image (or use the example files).");
    if (!state.driving) throw new FommError("Pick a driving video (or use the example files).");
    const fps = Number($("fps").value);
    if (!(fps > 0)) throw new FommError("frames/s must be a positive number.");
    state.running = true;
    state.stop = false;
    $("animate").disabled = true;
    $("stop").disabled = false;
    $("result").hidden = true;
    setProgress(0, 1, `loading model ${name}…`);
    const model = await loadModel(name);
    const [h, w] = frameShape(model);
    const source = await readSource(state.source, w, h);
    const video = await openVideo(state.driving);
    let count = Math.max(1, Math.floor(video.duration * fps + 1e-6));
    const limit = Number($("max-frames").value);
    if (limit > 0) count = Math.min(count, limit);
    const animation = await startAnimation(name, source, {
      relative: $("relative").checked,
      adaptScale: $("adapt").checked,
    });
    const driving = [];
    const results = [];
    const start = performance.now();
    let batch = [];
    const flush = async () => {
      for (const image of await animation.animate(batch)) {
        results.push(image);
        draw($("result-view"), image);
      }
      driving.push(...batch);
      batch = [];
      const seconds = (performance.now() - start) / 1000;
      setProgress(results.length, count, `${results.length} / ${count} frames, ${(results.length / seconds).toFixed(2)} frames/s`);
    };
    setProgress(0, count, `0 / ${count} frames`);
    for await (const frame of videoFrames(video, fps, count, w, h)) {
      if (state.stop) break;
      batch.push(frame);
      if (batch.length === BATCH_SIZE) await flush();
    }
    if (batch.length && !state.stop) await flush();
    URL.revokeObjectURL(video.src);
    if (!results.length) throw new FommError("Stopped before the first frame.");
    const seconds = (performance.now() - start) / 1000;
    setProgress(results.length, count, `${results.length} frames in ${seconds.toFixed(1)} s (${(results.length / seconds).toFixed(2)} frames/s); encoding WebM…`);
    await publish(results, fps);
    setProgress(results.length, count, `${results.length} frames in ${seconds.toFixed(1)} s (${(results.length / seconds).toFixed(2)} frames/s). Done.`);
    replay(source, driving, results, fps);
  } catch (error) {
    showMessage(error instanceof FommError ? error.message : `Failed: ${error.message || error}`);
    setProgress(0, 1, "");
    if (!(error instanceof FommError)) console.error(error);
  } finally {
    state.running = false;
    $("animate").disabled = false;
    $("stop").disabled = true;
  }
}

/** The result as a WebM (MediaRecorder on a canvas, one frame per 1/fps s) and a ZIP of PNG
 * frames, shown in the result video and the download links. */
async function publish(frames, fps) {
  const canvas = document.createElement("canvas");
  canvas.width = frames[0].width;
  canvas.height = frames[0].height;
  const context = canvas.getContext("2d");
  context.putImageData(frames[0], 0, 0);
  const stream = canvas.captureStream(0);
  const track = stream.getVideoTracks()[0];
  const type = ["video/webm;codecs=vp9", "video/webm;codecs=vp8", "video/webm"].find((t) => MediaRecorder.isTypeSupported(t));
  const recorder = new MediaRecorder(stream, { mimeType: type, videoBitsPerSecond: 8e6 });
  const chunks = [];
  recorder.ondataavailable = (event) => event.data.size && chunks.push(event.data);
  const stopped = new Promise((resolve) => (recorder.onstop = resolve));
  recorder.start();
  const start = performance.now();
  for (let i = 0; i < frames.length; i++) {
    context.putImageData(frames[i], 0, 0);
    track.requestFrame();
    const wait = start + ((i + 1) * 1000) / fps - performance.now();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)));
  }
  recorder.stop();
  await stopped;
  const webm = new Blob(chunks, { type: "video/webm" });
  const pngs = [];
  for (let i = 0; i < frames.length; i++) {
    context.putImageData(frames[i], 0, 0);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    pngs.push({ name: `${String(i).padStart(6, "0")}.png`, bytes: new Uint8Array(await blob.arrayBuffer()) });
  }
  for (const link of ["download-webm", "download-png"]) {
    if ($(link).href) URL.revokeObjectURL($(link).href);
  }
  $("download-webm").href = URL.createObjectURL(webm);
  $("download-png").href = URL.createObjectURL(zip(pngs));
  $("result-video").src = $("download-webm").href;
  $("result").hidden = false;
}

/** Plays source | driving | result in the three panels, in a loop at the video's rate. */
function replay(source, driving, results, fps) {
  draw($("source-view"), source);
  let i = 0;
  state.replay = setInterval(() => {
    draw($("driving-view"), driving[i]);
    draw($("result-view"), results[i]);
    i = (i + 1) % results.length;
  }, 1000 / fps);
}

function stopReplay() {
  clearInterval(state.replay);
  state.replay = null;
}

async function useExample() {
  showMessage("");
  try {
    const files = [];
    for (const [path, type] of [["example/source.png", "image/png"], ["example/driving.mp4", "video/mp4"]]) {
      const response = await fetch(path);
      if (!response.ok) throw new FommError(`${path} is not served next to the page (see docs/web.md).`);
      files.push(new File([await response.blob()], path.split("/").pop(), { type }));
    }
    state.source = files[0];
    await (state.choosing = chooseDriving(files[1]));
    setProgress(0, 1, `Example files chosen: source.png and driving.mp4 (${$("fps").value} frames/s).`);
  } catch (error) {
    showMessage(error.message);
  }
}

$("source").addEventListener("change", (e) => (state.source = e.target.files[0] || null));
$("driving").addEventListener("change", (e) => (state.choosing = chooseDriving(e.target.files[0] || null)));
$("example").addEventListener("click", useExample);
$("animate").addEventListener("click", animate);
$("stop").addEventListener("click", () => (state.stop = true));
fillModels().catch((error) => showMessage(`Could not list the models: ${error.message}`));
// The footer says how many WebAssembly threads run the models, and why only one (isolate.js).
const why = window.fommIsolation && window.fommIsolation.startsWith("unavailable") ? ` (${window.fommIsolation.slice(13)})` : "";
$("runtime").textContent = `ONNX Runtime Web, WebAssembly, ${threads()} thread${threads() === 1 ? "" : "s"}${why}`;
