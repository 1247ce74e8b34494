// The page a person uses: pick a model, a source image and a driving video, animate, watch
// source | driving | result, download the result as WebM or PNG frames.

import { BATCH_SIZE, FommError, listModels, loadModel, startAnimation, threads } from "./fomm.js";
import { drivingBox, framingNote, pasteBack, sourceBox } from "./faces.js";
import { centreSquare } from "./frame.js";
import { zip } from "./zip.js";

const $ = (id) => document.getElementById(id);
// How long a video may take to load or seek before the page says it cannot decode it.
const VIDEO_TIMEOUT_MS = 15000;

const state = { source: null, driving: null, choosing: null, running: false, stop: false, replay: null };

export function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

function showNote(text) {
  $("note").textContent = text;
  $("note").hidden = !text;
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

/** The image (its `box` [x, y, w, h] when given) scaled to w x h (the browser's
 * high-quality smoothing), as ImageData. */
function scaled(source, w, h, canvas = document.createElement("canvas"), box = null) {
  canvas.width = w;
  canvas.height = h;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = "high";
  if (box) context.drawImage(source, ...box, 0, 0, w, h);
  else context.drawImage(source, 0, 0, w, h);
  return context.getImageData(0, 0, w, h);
}

export function draw(canvas, image) {
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext("2d").putImageData(image, 0, 0);
}

/** The centred square of a width x height frame as a box [x, y, w, h]. */
function centreBox(width, height) {
  const { x, y, size } = centreSquare(width, height);
  return [x, y, size, size];
}

/** The source image at w x h: its centred square (never squashed). */
export async function readSource(file, w, h) {
  return (await readFramed(file, w, h, false)).image;
}

/** {image: the source at w x h, full: the whole photo, box: the part animated}: the face's
 * box with `crop`, else the centred square. */
async function readFramed(file, w, h, crop) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new FommError(`"${file.name}" is not an image this browser can read: give a PNG or JPEG.`);
  }
  const full = scaled(bitmap, bitmap.width, bitmap.height);
  try {
    const box = crop ? await sourceBox(full) : centreBox(full.width, full.height);
    return { image: scaled(bitmap, w, h, $("source-view"), box), full, box };
  } finally {
    bitmap.close();
  }
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
    const failed = () => {
      // The browser's own text (e.g. "DEMUXER_ERROR_COULD_NOT_OPEN: FFmpegDemuxer: open
      // context failed") tells a person nothing: it goes to the console, the page says what to do.
      console.warn(`${what}: ${target.error?.message || "unsupported format"}`);
      done(new FommError(`${what}: the browser cannot decode it. Give an MP4 (H.264) or WebM (VP8/VP9) video.`));
    };
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
  if (!newPick(file, "driving-view")) return;
  try {
    const video = await openVideo(file);
    preview(video, "driving-view");
    const fps = await detectFps(video);
    URL.revokeObjectURL(video.src);
    if (fps) $("fps").value = fps;
    setProgress(0, 1, `${file.name}: ${video.duration.toFixed(2)} s` + (fps ? `, ${fps} frames/s` : ", frame rate unknown: set frames/s"));
  } catch (error) {
    showMessage(error.message);
  }
}

/** Driving frame i at the given frame rate (its `box`, scaled to w x h), read by seeking to
 * the middle of its display time. */
async function videoFrame(video, fps, i, w, h, canvas, box) {
  const seeked = waitFor(video, "seeked", "the driving video");
  video.currentTime = Math.min((i + 0.5) / fps, video.duration);
  await seeked;
  return scaled(video, w, h, canvas, box);
}

/** Driving frames i = 0, 1, ... count - 1. */
async function* videoFrames(video, fps, count, w, h, box) {
  for (let i = 0; i < count; i++) yield videoFrame(video, fps, i, w, h, $("driving-view"), box);
}

async function animate() {
  showMessage("");
  showNote("");
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
    const [crop, paste] = [$("crop").checked, $("paste").checked];
    if (paste && !crop) throw new FommError("Paste back pastes the animated face into the photo: tick Crop to the face too.");
    if (crop) setProgress(0, 1, "finding the faces…");
    const { image: source, full, box } = await readFramed(state.source, w, h, crop);
    const video = await openVideo(state.driving);
    let count = Math.max(1, Math.floor(video.duration * fps + 1e-6));
    const limit = Number($("max-frames").value);
    if (limit > 0) count = Math.min(count, limit);
    if (paste) checkPasteMemory(full, count);
    const size = [video.videoWidth, video.videoHeight];
    const drivingRegion = crop
      ? await drivingBox(count, (i) => videoFrame(video, fps, i, ...size, undefined, null), size)
      : centreBox(...size);
    showNote(framingNote(crop, [state.source.name, [full.width, full.height], box], [state.driving.name, size, drivingRegion]));
    const animation = await startAnimation(name, source, {
      relative: $("relative").checked,
      adaptScale: $("adapt").checked,
    });
    const driving = [];
    const results = [];
    const start = performance.now();
    let batch = [];
    const flush = async () => {
      for (const frame of await animation.animate(batch)) {
        const image = paste ? pasteBack(full, frame, box) : frame;
        results.push(image);
        draw($("result-view"), image);
      }
      driving.push(...batch);
      batch = [];
      const seconds = (performance.now() - start) / 1000;
      setProgress(results.length, count, `${results.length} / ${count} frames, ${(results.length / seconds).toFixed(2)} frames/s`);
    };
    setProgress(0, count, `0 / ${count} frames`);
    for await (const frame of videoFrames(video, fps, count, w, h, drivingRegion)) {
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

// Pasted-back frames are kept at the photo's size until the video is encoded; past this a
// tab runs out of memory (Chromium's limit per tab is about 4 GB) with no message at all.
const PASTE_MEMORY_BYTES = 1.5 * 2 ** 30;

/** A FommError when `count` frames pasted into `photo` would not fit PASTE_MEMORY_BYTES. */
function checkPasteMemory(photo, count) {
  const perFrame = photo.width * photo.height * 4;
  if (perFrame * count <= PASTE_MEMORY_BYTES) return;
  const most = Math.max(1, Math.floor(PASTE_MEMORY_BYTES / perFrame));
  throw new FommError(`Paste back of ${count} frames into a ${photo.width}x${photo.height} photo needs ${((perFrame * count) / 2 ** 30).toFixed(1)} GB of memory: set frames to ${most} or less, or use a smaller photo.`);
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

// What the inputs and previews show is what Animate (and Camera) will use: a file is previewed
// (and a bad one reported) when it is picked, and the example files replace the picked ones
// in the file inputs too.

/** Sets file input `id` to `file`, as if the person had picked it. */
function pick(id, file) {
  const files = new DataTransfer();
  files.items.add(file);
  $(id).files = files.files;
}

/** Draws the centred square of `image` (an image, video or canvas) into canvas `id` at that
 * canvas's size. */
function preview(image, id) {
  const canvas = $(id);
  const box = centreBox(image.videoWidth || image.width, image.videoHeight || image.height);
  scaled(image, canvas.width, canvas.height, canvas, box);
}

/** A new pick (or none, when `file` is null) for preview `id`: clears it, and the replay and
 * the message of the previous pick; returns the file. */
function newPick(file, id) {
  stopReplay();
  const canvas = $(id);
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  if (file) showMessage("");
  return file;
}

/** A picked source image: previewed at once, or reported at once when it is not an image. */
async function chooseSource(file) {
  state.source = file;
  if (!newPick(file, "source-view")) return;
  try {
    const canvas = $("source-view");
    await readSource(file, canvas.width, canvas.height);
  } catch (error) {
    showMessage(error.message);
  }
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
    pick("source", files[0]);
    pick("driving", files[1]);
    await chooseSource(files[0]);
    await (state.choosing = chooseDriving(files[1]));
    setProgress(0, 1, `Example files chosen: source.png and driving.mp4 (${$("fps").value} frames/s).`);
  } catch (error) {
    showMessage(error.message);
  }
}

$("source").addEventListener("change", (e) => chooseSource(e.target.files[0] || null));
$("driving").addEventListener("change", (e) => (state.choosing = chooseDriving(e.target.files[0] || null)));
$("example").addEventListener("click", useExample);
$("animate").addEventListener("click", animate);
$("stop").addEventListener("click", () => (state.stop = true));
fillModels().catch((error) => showMessage(`Could not list the models: ${error.message}`));
// The footer says how many WebAssembly threads run the models, and why only one (isolate.js).
const why = window.fommIsolation && window.fommIsolation.startsWith("unavailable") ? ` (${window.fommIsolation.slice(13)})` : "";
$("runtime").textContent = `ONNX Runtime Web (LiteRT.js for -litert models), WebAssembly, ${threads()} thread${threads() === 1 ? "" : "s"}${why}`;
