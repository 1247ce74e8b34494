// The animation itself: demo.py's make_animation on ONNX Runtime Web (WASM), with the models
// that `python build.py --web` writes to web/models/NAME/ (see model.json there).
//
// window.fomm.animateFrames(model, sourcePng, drivingPngs, {relative, adaptScale}) is the
// automation contract of the page: PNG data URLs in (already at the model's frame size),
// PNG data URLs out, one per driving frame; drivingPngs[0] is the initial frame of relative
// motion; frames are converted to uint8 as skimage's img_as_ubyte does.

import * as ort from "./node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";

ort.env.wasm.wasmPaths = new URL("./node_modules/onnxruntime-web/dist/", import.meta.url).href;
// Threads need a cross-origin isolated page (SharedArrayBuffer): the server's COOP/COEP
// headers, else isolate.js's service worker; without it ORT runs on one thread. The page's
// ?threads=N asks for fewer threads than cores (1: no worker threads).
ort.env.wasm.numThreads = self.crossOriginIsolated ? wantedThreads() : 1;

function wantedThreads() {
  const cores = navigator.hardwareConcurrency || 1;
  const asked = new URLSearchParams(location.search).get("threads");
  if (asked === null) return cores;
  if (!/^[1-9][0-9]*$/.test(asked)) {
    console.warn(`?threads=${asked} is not a positive whole number; using ${cores} (one per core)`);
    return cores;
  }
  return Math.min(Number(asked), cores);
}

/** WebAssembly threads the models run on: after the first model loads, what ORT really
 * started (it drops to 1 by itself where threads cannot run). */
export function threads() {
  return ort.env.wasm.numThreads;
}

// What the page reads from model.json; a folder without it was not built with --web.
export const MODEL_FORMAT = "fomm-web-1";
// Frames per model call: batch 4 is the pipeline's default (modules/app/pipeline.py).
export const BATCH_SIZE = 4;

export class FommError extends Error {}

const models = new Map(); // name -> Promise of a loaded model

export function modelUrl(name, file) {
  return new URL(`models/${encodeURIComponent(name)}/${file}`, document.baseURI).href;
}

/** The built models listed in models/index.json (written by build.py --web). */
export async function listModels() {
  const url = new URL("models/index.json", document.baseURI).href;
  const response = await fetch(url, { cache: "no-cache" }).catch(() => null);
  if (!response || !response.ok) return [];
  const index = await response.json();
  return Array.isArray(index.models) ? index.models : [];
}

// build.py writes models/NAME/manifest.json (modules/export/manifest.py): the SHA-256 and
// size of every file of the model. Each file is checked against it before it is used: one
// flipped bit in a model gives wrong frames and no error.
export const MANIFEST_FORMAT = "fomm-manifest-1";

/** models/NAME/manifest.json's files ({file: {sha256, size}}), or null when the model was
 * built before build.py wrote manifests (a warning, and the files go unchecked). */
export async function readManifest(name, hint = `rebuild with: python build.py --model ${name} --web`) {
  let response;
  try {
    response = await fetch(modelUrl(name, "manifest.json"), { cache: "no-cache" });
  } catch (error) {
    throw new FommError(`Could not reach models/${name}/manifest.json (${error.message})`);
  }
  if (response.status === 404) {
    console.warn(`models/${name} has no manifest.json, so its files are not checked before they load; ${hint}`);
    return null;
  }
  let manifest = null;
  try {
    if (response.ok) manifest = await response.json();
  } catch {
    manifest = null;
  }
  if (!manifest || manifest.format !== MANIFEST_FORMAT || typeof manifest.files !== "object" || !manifest.files) {
    throw new FommError(`models/${name}/manifest.json is not a manifest that build.py wrote: ${hint}`);
  }
  return manifest.files;
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

let unchecked = false; // warned once: no Web Crypto here

/** Throws a FommError unless `bytes` (an ArrayBuffer) are models/NAME/FILE as build.py
 * wrote it. */
export async function checkFile(name, files, file, bytes, hint = `rebuild with: python build.py --model ${name} --web`) {
  if (!files) return;
  const where = `models/${name}/${file}`;
  const entry = files[file];
  if (!entry) {
    throw new FommError(`${where} is not listed in its manifest (models/${name}/manifest.json): ${hint}`);
  }
  // crypto.subtle exists only in secure contexts (https://, or http:// on localhost).
  if (!globalThis.crypto || !crypto.subtle) {
    if (!unchecked) console.warn("this page is not a secure context (https or localhost): model files are not checked against their manifests");
    unchecked = true;
    return;
  }
  if (bytes.byteLength !== entry.size || hex(await crypto.subtle.digest("SHA-256", bytes)) !== entry.sha256) {
    throw new FommError(`${where} does not match its manifest (models/${name}/manifest.json): the file changed since build.py wrote it; ${hint}`);
  }
}

async function readDescription(name) {
  const hint = `build it with: python build.py --model ${name} --web`;
  if (typeof name !== "string" || !/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith(".")) {
    throw new FommError(`"${name}" is not a model name (letters, digits, . _ - only)`);
  }
  let response;
  try {
    response = await fetch(modelUrl(name, "model.json"), { cache: "no-cache" });
  } catch (error) {
    throw new FommError(`Could not reach models/${name}/model.json (${error.message})`);
  }
  if (!response.ok) {
    throw new FommError(`Model "${name}" is not built for the web (no models/${name}/model.json): ${hint}`);
  }
  const bytes = await response.arrayBuffer();
  const files = await readManifest(name);
  await checkFile(name, files, "model.json", bytes);
  let description;
  try {
    description = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new FommError(`models/${name}/model.json is not valid JSON: ${hint}`);
  }
  if (description.format !== MODEL_FORMAT) {
    throw new FommError(`models/${name}/model.json is not a web model of this page (format ${JSON.stringify(description.format)}, expected ${MODEL_FORMAT}): ${hint}`);
  }
  return { description, files };
}

/** The bytes (Uint8Array) of models/NAME/FILE, checked against the model's manifest. */
async function fetchChecked(name, file, files, hint) {
  // Fetched here, not by the runtime: "no-cache" revalidates, so a rebuilt model is never stale.
  const response = await fetch(modelUrl(name, file), { cache: "no-cache" });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const buffer = await response.arrayBuffer();
  await checkFile(name, files, file, buffer, hint);
  return new Uint8Array(buffer);
}

function loadError(name, file, error, hint) {
  if (error instanceof FommError) return error;
  return new FommError(`Could not load models/${name}/${file} (${error.message || error}): ${hint || `rebuild it with: python build.py --model ${name} --web`}`);
}

export async function createSession(name, file, files, hint = undefined) {
  try {
    return await ort.InferenceSession.create(await fetchChecked(name, file, files, hint), {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    });
  } catch (error) {
    throw loadError(name, file, error, hint);
  }
}

// model.json's runtime for build.py --web_litert's TF Lite models (modules/export/web_litert.py).
export const LITERT_RUNTIME = "litertjs (wasm)";

async function litertSessions(name, description, files) {
  const hint = `rebuild it with: python build.py --model ${name.replace(/-litert$/, "")} --web_litert`;
  let file = "model.json";
  try {
    const litert = await import("./litert.js");
    return await litert.createSessions(description, (f) => fetchChecked(name, (file = f), files, hint), threads(), ort.Tensor);
  } catch (error) {
    throw loadError(name, file, error, hint);
  }
}

/** Loads (once) the four sessions of a model built with build.py --web (ONNX Runtime Web)
 * or --web_litert (LiteRT.js). */
export function loadModel(name) {
  if (!models.has(name)) {
    const loading = (async () => {
      const { description, files } = await readDescription(name);
      if (description.runtime === LITERT_RUNTIME) {
        return { name, description, sessions: await litertSessions(name, description, files) };
      }
      const sessions = {};
      for (const [key, file] of Object.entries(description.files)) {
        sessions[key] = await createSession(name, file, files);
      }
      return { name, description, sessions };
    })();
    models.set(name, loading);
    loading.catch(() => models.delete(name)); // a later call may find it built
  }
  return models.get(name);
}

/** Float32 NHWC tensor [n, h, w, 3] in [0, 1] from RGBA ImageData: uint8 / 255. */
export function imagesToTensor(images) {
  const [h, w] = [images[0].height, images[0].width];
  const data = new Float32Array(images.length * h * w * 3);
  let o = 0;
  for (const image of images) {
    const rgba = image.data;
    for (let i = 0; i < rgba.length; i += 4) {
      data[o++] = rgba[i] / 255;
      data[o++] = rgba[i + 1] / 255;
      data[o++] = rgba[i + 2] / 255;
    }
  }
  return new ort.Tensor("float32", data, [images.length, h, w, 3]);
}

/** skimage.img_as_ubyte for float32 in [-1, 1]: rint(float32(x * 255)) (ties to even),
 * clipped to [0, 255]. */
export function toUbyte(x) {
  const y = Math.fround(x * 255);
  let r = Math.round(y);
  if (r - y === 0.5 && r % 2 !== 0) r -= 1; // Math.round rounds ties up; rint to even
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

/** ImageData list from a prediction tensor [n, h, w, 3]. */
export function tensorToImages(tensor) {
  const [n, h, w] = tensor.dims;
  const data = tensor.data;
  const images = [];
  for (let b = 0; b < n; b++) {
    const image = new ImageData(w, h);
    const rgba = image.data;
    let o = b * h * w * 3;
    for (let i = 0; i < rgba.length; i += 4) {
      rgba[i] = toUbyte(data[o++]);
      rgba[i + 1] = toUbyte(data[o++]);
      rgba[i + 2] = toUbyte(data[o++]);
      rgba[i + 3] = 255;
    }
    images.push(image);
  }
  return images;
}

function slice(tensor, start, count) {
  const size = tensor.dims.slice(1).reduce((a, b) => a * b, 1);
  return new ort.Tensor(
    tensor.type,
    tensor.data.slice(start * size, (start + count) * size),
    [count, ...tensor.dims.slice(1)],
  );
}

function scalar(value) {
  return new ort.Tensor("float32", new Float32Array([value]), []);
}

/** Runs a session with the entries of `values` that it takes (models without jacobians
 * have no jacobian inputs). */
async function run(session, values) {
  const feeds = {};
  for (const name of session.inputNames) {
    if (!(name in values)) throw new FommError(`the web model wants an input "${name}" this page does not know`);
    feeds[name] = values[name];
  }
  return session.run(feeds);
}

function named(role, kp) {
  const out = {};
  for (const [key, value] of Object.entries(kp)) out[`kp_${role}_${key}`] = value;
  return out;
}

function keypoints(outputs) {
  const kp = { value: outputs.value };
  if (outputs.jacobian) kp.jacobian = outputs.jacobian;
  return kp;
}

function takeFirst(kp) {
  const out = {};
  for (const [key, value] of Object.entries(kp)) out[key] = slice(value, 0, 1);
  return out;
}

/**
 * An animation of one source image: call `animate(frames)` with consecutive batches of
 * driving ImageData; the first frame given is the initial frame of relative motion.
 */
export async function startAnimation(name, sourceImage, { relative = false, adaptScale = false } = {}) {
  const model = await loadModel(name);
  const [h, w] = model.description.frame_shape;
  if (sourceImage.width !== w || sourceImage.height !== h) {
    throw new FommError(`the source is ${sourceImage.width}x${sourceImage.height}; model "${name}" takes ${w}x${h} frames`);
  }
  const s = model.sessions;
  const source = imagesToTensor([sourceImage]);
  const kpSource = keypoints(await run(s.kp_detector, { image: source }));
  const encoded = await run(s.encode_source, { source_image: source });
  let kpInitial = null;
  return {
    model,
    /** The next frame given becomes the initial frame of relative motion (the camera's
     * "reset reference frame"). */
    reset() {
      kpInitial = null;
    },
    async animate(frames) {
      for (const frame of frames) {
        if (frame.width !== w || frame.height !== h) {
          throw new FommError(`a driving frame is ${frame.width}x${frame.height}; model "${name}" takes ${w}x${h} frames`);
        }
      }
      const kpDriving = keypoints(await run(s.kp_detector, { image: imagesToTensor(frames) }));
      if (!kpInitial) kpInitial = takeFirst(kpDriving);
      const kpNorm = keypoints(
        await run(s.process_kp, {
          ...named("source", kpSource),
          ...named("driving", kpDriving),
          ...named("initial", kpInitial),
          use_relative_movement: scalar(relative ? 1 : 0),
          use_relative_jacobian: scalar(relative ? 1 : 0),
          adapt_movement_scale: scalar(adaptScale ? 1 : 0),
        }),
      );
      const out = await run(s.animate_encoded, {
        source_features: encoded.source_features,
        source_motion_image: encoded.source_motion_image,
        ...named("source", kpSource),
        ...named("driving", kpNorm),
      });
      return tensorToImages(out.prediction);
    },
  };
}

/** ImageData of a PNG (or any image) data URL, pixel for pixel. */
export async function decodeImage(url) {
  const image = new Image();
  image.src = url;
  try {
    await image.decode();
  } catch {
    throw new FommError("an input is not an image the browser can decode");
  }
  const canvas = document.createElement("canvas");
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const context = canvas.getContext("2d", { willReadFrequently: true, colorSpace: "srgb" });
  context.drawImage(image, 0, 0);
  return context.getImageData(0, 0, canvas.width, canvas.height, { colorSpace: "srgb" });
}

export function imageToPng(image) {
  const canvas = document.createElement("canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext("2d").putImageData(image, 0, 0);
  return canvas.toDataURL("image/png");
}

/** The automation contract (see the top of this file). */
export async function animateFrames(model, sourcePng, drivingPngs, options = {}) {
  if (!Array.isArray(drivingPngs) || drivingPngs.length === 0) {
    throw new FommError("drivingPngs must be a non-empty array of PNG data URLs");
  }
  const animation = await startAnimation(model, await decodeImage(sourcePng), {
    relative: Boolean(options.relative),
    adaptScale: Boolean(options.adaptScale),
  });
  const results = [];
  for (let i = 0; i < drivingPngs.length; i += BATCH_SIZE) {
    const frames = await Promise.all(drivingPngs.slice(i, i + BATCH_SIZE).map(decodeImage));
    for (const image of await animation.animate(frames)) results.push(imageToPng(image));
  }
  return results;
}

window.fomm = { animateFrames, listModels, loadModel, ort, threads };
