// The Camera button: the source animated live by the camera (getUserMedia). Each turn takes
// the camera's latest frame: frames that came while the model ran are skipped, so the result
// lags by one model call instead of a growing queue. Frames are centre-cropped to a square,
// scaled to the model's frame size, and run at batch 1 through the same model calls as
// animateFrames. The first frame (and the first after "Reset reference frame") is the initial
// frame of relative motion. "Record" records the result canvas to WebM (MediaRecorder).
//
// window.fomm.liveFrames(model, sourcePng, n, {relative, adaptScale}) is this loop's automation
// contract: it runs on the next n camera frames and returns a Promise of {captured, animated},
// PNG data URLs of the camera frames used (at the model's frame size; captured[0] is the
// initial frame) and of their results, which equal animateFrames(model, sourcePng, captured,
// options) within 1 level.

import { draw, readSource, showMessage } from "./app.js"; // the page's message and source, as Animate has them
import { FommError, decodeImage, imageToPng, loadModel, startAnimation } from "./fomm.js";
import { centreCrop, centreSquare } from "./frame.js";

const $ = (id) => document.getElementById(id);
// Frames per second are measured over the last this many results.
const FPS_WINDOW = 10;

/** The camera's message for getUserMedia's error names: what the person can do about it. */
function cameraMessage(error) {
  switch (error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "The camera is not allowed for this page: allow it in the browser's site settings (the page must come from https:// or http://localhost), then press Camera again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera was found: connect one, then press Camera again.";
    case "NotReadableError":
    case "AbortError":
      return "The camera could not start (another program may be using it): close that program, then press Camera again.";
    default:
      return "The camera could not start: check that one is connected and allowed for this page, then press Camera again.";
  }
}

/** A playing <video> of the camera. */
async function openCamera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new FommError("This browser gives this page no camera: open the page from https:// or http://localhost in a browser with camera support.");
  }
  if (!HTMLVideoElement.prototype.requestVideoFrameCallback) {
    throw new FommError("This browser cannot tell the page when a camera frame arrives (requestVideoFrameCallback): use a current Chromium, Firefox or Safari.");
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (error) {
    throw new FommError(cameraMessage(error));
  }
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.srcObject = stream;
  try {
    await video.play();
  } catch (error) {
    closeCamera(video);
    throw new FommError(cameraMessage(error));
  }
  return video;
}

function closeCamera(video) {
  for (const track of video.srcObject?.getTracks() || []) track.stop();
  video.srcObject = null;
}

/** The live loop on a playing camera <video> and an animation (fomm.js's startAnimation). */
class Live {
  constructor(video, animation) {
    this.video = video;
    this.animation = animation;
    const [h, w] = animation.model.description.frame_shape;
    this.size = [w, h];
    this.canvas = document.createElement("canvas");
    this.stopped = false;
    this.resetPending = true; // the first frame is the initial frame
    this.latest = null; // metadata of the newest frame the camera presented
    this.waiting = [];
    const tick = (now, meta) => {
      this.latest = meta;
      for (const resolve of this.waiting.splice(0)) resolve();
      if (!this.stopped) video.requestVideoFrameCallback(tick);
    };
    video.requestVideoFrameCallback(tick);
  }

  /** Ends run() after its current turn. */
  stop() {
    this.stopped = true;
    for (const resolve of this.waiting.splice(0)) resolve();
  }

  /** The next frame becomes the initial frame of relative motion. */
  reset() {
    this.resetPending = true;
  }

  /** The metadata of a frame newer than `after` (the latest there is), or null when stopped. */
  async next(after) {
    while (!this.stopped && (!this.latest || (after && this.latest.presentedFrames <= after.presentedFrames))) {
      await new Promise((resolve) => this.waiting.push(resolve));
    }
    return this.stopped ? null : this.latest;
  }

  /** Animates up to `turns` camera frames, one per model call, until stop(); `shown` gets each
   * turn's {frame, result, reference, width, height, fps, latency} (ImageData; reference: this
   * frame is the initial frame; width x height: the camera's frame size; latency in ms). */
  async run(turns, shown) {
    const [w, h] = this.size;
    const times = [];
    let meta = null;
    try {
      for (let turn = 0; turn < turns; turn++) {
        meta = await this.next(meta);
        if (!meta) break;
        const { videoWidth: width, videoHeight: height } = this.video;
        const frame = centreCrop(this.video, width, height, w, h, this.canvas);
        const reference = this.resetPending;
        if (reference) this.animation.reset();
        this.resetPending = false;
        const [result] = await this.animation.animate([frame]);
        const now = performance.now();
        times.push(now);
        if (times.length > FPS_WINDOW) times.shift();
        const fps = times.length > 1 ? ((times.length - 1) * 1000) / (now - times[0]) : null;
        // captureTime: when the camera took the frame, where the browser says; else when it
        // reached the page.
        const latency = now - (meta.captureTime ?? meta.presentationTime);
        shown({ frame, result, reference, width, height, fps, latency });
      }
    } finally {
      this.stop(); // no more frame callbacks on this video
    }
  }
}

/** The automation contract (see the top of this file). */
export async function liveFrames(model, sourcePng, n, options = {}) {
  if (!Number.isInteger(n) || n < 1) throw new FommError("n must be a positive whole number of frames");
  const animation = await startAnimation(model, await decodeImage(sourcePng), {
    relative: Boolean(options.relative),
    adaptScale: Boolean(options.adaptScale),
  });
  const video = await openCamera();
  const captured = [];
  const animated = [];
  try {
    await new Live(video, animation).run(n, ({ frame, result }) => {
      captured.push(imageToPng(frame));
      animated.push(imageToPng(result));
    });
  } finally {
    closeCamera(video);
  }
  return { captured, animated };
}

// The page's Camera controls.

const ui = { live: null, recorder: null };

function describeCrop(width, height, [w, h]) {
  const { size } = centreSquare(width, height);
  const crop = width === height ? "" : `its centred ${size}x${size} square (cropped, not squashed), `;
  return `camera ${width}x${height}: ${crop}scaled to ${w}x${h}`;
}

function setRunning(running) {
  $("camera").textContent = running ? "Stop camera" : "Camera";
  $("camera-reset").disabled = !running;
  $("camera-record").disabled = !running;
  if (running) $("camera-panels").hidden = false; // after a stop, the recording link stays
}

async function startCamera() {
  showMessage("");
  // The animation and the camera would run the same model sessions at once.
  if ($("animate").disabled) {
    showMessage("An animation is running: wait for it or press Stop, then press Camera.");
    return;
  }
  const name = $("model").value;
  const file = $("source").files[0];
  if (!name) return showMessage("No model is chosen: build one with python build.py --model NAME --web.");
  if (!file) return showMessage("Pick a source image (or use the example files), then press Camera.");
  $("camera").disabled = true;
  $("animate").disabled = true;
  let video = null;
  try {
    $("camera-stats").textContent = `loading model ${name}…`;
    const model = await loadModel(name);
    const [h, w] = model.description.frame_shape;
    const source = await readSource(file, w, h); // as Animate takes it (shown in the source view)
    $("camera-stats").textContent = "starting the camera…";
    video = await openCamera();
    const animation = await startAnimation(name, source, {
      relative: $("relative").checked,
      adaptScale: $("adapt").checked,
    });
    ui.live = new Live(video, animation);
    setRunning(true);
    $("camera").disabled = false;
    await ui.live.run(Infinity, ({ frame, result, reference, width, height, fps, latency }) => {
      draw($("camera-view"), frame);
      draw($("live-view"), result);
      if (reference) draw($("reference-view"), frame);
      const rate = fps === null ? "…" : fps.toFixed(1);
      $("camera-stats").textContent = `${rate} frames/s, latency ${Math.round(latency)} ms`;
      $("camera-crop").textContent = describeCrop(width, height, [w, h]);
    });
  } catch (error) {
    showMessage(error instanceof FommError ? error.message : `The camera stopped: ${error.message || error}`);
    if (!(error instanceof FommError)) console.error(error);
  } finally {
    if (ui.recorder) await stopRecording();
    if (video) closeCamera(video);
    ui.live = null;
    setRunning(false);
    $("camera").disabled = false;
    $("animate").disabled = false;
  }
}

function startRecording() {
  if (!window.MediaRecorder) {
    showMessage("This browser cannot record video (no MediaRecorder): use a current Chromium, Firefox or Safari.");
    return;
  }
  const stream = $("live-view").captureStream(); // a frame each time the result is drawn
  const type = ["video/webm;codecs=vp9", "video/webm;codecs=vp8", "video/webm"].find((t) => MediaRecorder.isTypeSupported(t));
  const recorder = new MediaRecorder(stream, { mimeType: type, videoBitsPerSecond: 8e6 });
  const chunks = [];
  recorder.ondataavailable = (event) => event.data.size && chunks.push(event.data);
  recorder.stopped = new Promise((resolve) => (recorder.onstop = () => resolve(new Blob(chunks, { type: "video/webm" }))));
  recorder.start();
  ui.recorder = recorder;
  $("camera-record").textContent = "Stop recording";
}

async function stopRecording() {
  const recorder = ui.recorder;
  ui.recorder = null;
  recorder.stop();
  const webm = await recorder.stopped;
  const link = $("download-camera");
  if (link.href) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(webm);
  link.hidden = false;
  $("camera-record").textContent = "Record";
}

$("camera").addEventListener("click", () => (ui.live ? ui.live.stop() : startCamera()));
$("camera-reset").addEventListener("click", () => ui.live?.reset());
$("camera-record").addEventListener("click", () => (ui.recorder ? stopRecording() : startRecording()));
window.fomm.liveFrames = liveFrames;
