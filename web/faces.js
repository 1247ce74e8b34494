// Faces in the page: the scripts' --crop and --paste_back (docs/faces.md) in the browser.
//
// The detector is the scripts' MTCNN (the mtcnn package, modules/app/faces.py): its three
// networks run as ONNX models (models/mtcnn/, written by build.py --web with the faces
// extra), and this file runs the package's pipeline around them: the image pyramid
// (TensorFlow's area resize), P-Net proposals, NMS, R-Net and O-Net refinement (TensorFlow's
// crop_and_resize), box regression and squaring, with the package's defaults. The boxes then
// follow --crop's rules (modules/app/framing.py, boxes.py): the largest face of the source,
// one box for the whole driving clip, grown by 10% per side into a square kept inside the
// frame. Paste-back is modules/app/paste.py's feathered blend.

import * as ort from "./node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
import { FommError, checkFile, createSession, decodeImage, imageToPng, modelUrl, readManifest } from "./fomm.js";

const FOLDER = "mtcnn";
const FORMAT = "fomm-faces-1";
const HINT = "build the face detector with: python -m pip install 'fomm-tf[faces]', then python build.py --model NAME --web";
// The mtcnn package's defaults (mtcnn/mtcnn.py, stages/*.py).
const MIN_FACE_SIZE = 20;
const MIN_SIZE = 12;
const SCALE_FACTOR = 0.709;
const THRESHOLDS = { pnet: 0.6, rnet: 0.7, onet: 0.8 };

let detector = null;

/** numpy's round (and Python's): halves to even. */
export function roundHalfEven(x) {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The detector (three ONNX sessions and faces.json), loaded once. */
export function loadDetector() {
  if (!detector) {
    detector = (async () => {
      let response;
      try {
        response = await fetch(modelUrl(FOLDER, "faces.json"), { cache: "no-cache" });
      } catch (error) {
        throw new FommError(`Could not reach models/${FOLDER}/faces.json (${error.message})`);
      }
      if (!response.ok) throw new FommError(`The face detector is not built (no models/${FOLDER}/faces.json): ${HINT}`);
      const bytes = await response.arrayBuffer();
      const files = await readManifest(FOLDER, HINT);
      await checkFile(FOLDER, files, "faces.json", bytes, HINT);
      let meta = null;
      try {
        meta = JSON.parse(new TextDecoder().decode(bytes));
      } catch {
        meta = null;
      }
      if (!meta || meta.format !== FORMAT) throw new FommError(`models/${FOLDER}/faces.json is not a face detector of this page: ${HINT}`);
      const sessions = {};
      for (const [network, file] of Object.entries(meta.files)) {
        sessions[network] = await createSession(FOLDER, file, files, HINT);
      }
      return { meta, sessions };
    })();
    detector.catch(() => (detector = null));
  }
  return detector;
}

// Images here are {width, height, data}: data holds RGB (3 float32 values a pixel, row by
// row; float32 keeps a 12-megapixel photo at 144 MB).

function rgbOf(imageData) {
  const { width, height, data } = imageData;
  const out = new Float32Array(width * height * 3);
  for (let i = 0, o = 0; i < data.length; i += 4) {
    out[o++] = data[i];
    out[o++] = data[i + 1];
    out[o++] = data[i + 2];
  }
  return { width, height, data: out };
}

// skimage.transform.resize (order 1, mode "reflect", anti-aliased when it shrinks): a Gaussian
// of sigma (factor - 1) / 2 (scipy's gaussian_filter, mode "mirror", truncate 4), then
// scipy's zoom with grid_mode (pixel centres), linear.

function mirror(i, n) {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  i = ((i % period) + period) % period;
  return i < n ? i : period - i;
}

function gaussianAxis(image, sigma, vertical) {
  const radius = Math.floor(4 * sigma + 0.5);
  const kernel = [];
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    const v = Math.exp((-0.5 / (sigma * sigma)) * i * i);
    kernel.push(v);
    sum += v;
  }
  for (let i = 0; i < kernel.length; i++) kernel[i] /= sum;
  const { width, height, data } = image;
  const out = new Float32Array(data.length);
  const n = vertical ? height : width;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = vertical ? y : x;
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let k = -radius; k <= radius; k++) {
          const j = mirror(at + k, n);
          acc += kernel[k + radius] * data[((vertical ? j : y) * width + (vertical ? x : j)) * 3 + c];
        }
        out[(y * width + x) * 3 + c] = acc;
      }
    }
  }
  return { width, height, data: out };
}

function linearTaps(outSize, inSize) {
  const factor = inSize / outSize;
  const taps = [];
  for (let o = 0; o < outSize; o++) {
    const at = (o + 0.5) * factor - 0.5;
    const low = Math.floor(at);
    taps.push([mirror(low, inSize), mirror(low + 1, inSize), at - low]);
  }
  return taps;
}

/** skimage.transform.resize(image, (height, width)) of an RGB image (any value range). */
export function resizeLike(image, height, width) {
  const factors = [image.height / height, image.width / width];
  let source = image;
  if (factors[0] > 1 || factors[1] > 1) {
    if (factors[0] > 1) source = gaussianAxis(source, (factors[0] - 1) / 2, true);
    if (factors[1] > 1) source = gaussianAxis(source, (factors[1] - 1) / 2, false);
  }
  const rows = linearTaps(height, image.height);
  const cols = linearTaps(width, image.width);
  const out = new Float32Array(height * width * 3);
  const w = image.width;
  const data = source.data;
  for (let y = 0; y < height; y++) {
    const [y0, y1, fy] = rows[y];
    for (let x = 0; x < width; x++) {
      const [x0, x1, fx] = cols[x];
      for (let c = 0; c < 3; c++) {
        const top = data[(y0 * w + x0) * 3 + c] * (1 - fx) + data[(y0 * w + x1) * 3 + c] * fx;
        const bottom = data[(y1 * w + x0) * 3 + c] * (1 - fx) + data[(y1 * w + x1) * 3 + c] * fx;
        out[(y * width + x) * 3 + c] = top * (1 - fy) + bottom * fy;
      }
    }
  }
  return { width, height, data: out };
}

/** tf.image.resize(method="area") of an RGB image to height x width. */
function resizeArea(image, height, width) {
  const sy = image.height / height;
  const sx = image.width / width;
  const spans = (outSize, inSize, s) => {
    const result = [];
    for (let o = 0; o < outSize; o++) {
      const start = o * s;
      const end = (o + 1) * s;
      const cells = [];
      for (let i = Math.floor(start); i < Math.ceil(end); i++) {
        const weight = i < start ? (i + 1 > end ? s : i + 1 - start) : i + 1 > end ? end - i : 1;
        cells.push([Math.min(Math.max(i, 0), inSize - 1), weight]);
      }
      result.push(cells);
    }
    return result;
  };
  const rows = spans(height, image.height, sy);
  const cols = spans(width, image.width, sx);
  const norm = 1 / (sy * sx);
  const out = new Float32Array(height * width * 3);
  const { data, width: w } = image;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (const [iy, wy] of rows[y]) {
          for (const [ix, wx] of cols[x]) sum += data[(iy * w + ix) * 3 + c] * wy * wx;
        }
        out[(y * width + x) * 3 + c] = sum * norm;
      }
    }
  }
  return out;
}

/** tf.image.crop_and_resize of boxes [x1, y1, x2, y2] (pixels, as mtcnn's extract_patches
 * normalizes them: by the width and height), bilinear, 0 outside the image. */
function cropAndResize(image, boxes, size) {
  const { width: W, height: H, data } = image;
  const out = new Float32Array(boxes.length * size * size * 3);
  boxes.forEach((box, n) => {
    const [x1, y1, x2, y2] = [box.x1 / W, box.y1 / H, box.x2 / W, box.y2 / H].map(Math.fround);
    const hs = ((y2 - y1) * (H - 1)) / (size - 1);
    const ws = ((x2 - x1) * (W - 1)) / (size - 1);
    for (let y = 0; y < size; y++) {
      const inY = y1 * (H - 1) + y * hs;
      if (inY < 0 || inY > H - 1) continue;
      const top = Math.floor(inY);
      const bottom = Math.ceil(inY);
      const fy = inY - top;
      for (let x = 0; x < size; x++) {
        const inX = x1 * (W - 1) + x * ws;
        if (inX < 0 || inX > W - 1) continue;
        const left = Math.floor(inX);
        const right = Math.ceil(inX);
        const fx = inX - left;
        for (let c = 0; c < 3; c++) {
          const tl = data[(top * W + left) * 3 + c];
          const tr = data[(top * W + right) * 3 + c];
          const bl = data[(bottom * W + left) * 3 + c];
          const br = data[(bottom * W + right) * 3 + c];
          const t = tl + (tr - tl) * fx;
          const b = bl + (br - bl) * fx;
          out[((n * size + y) * size + x) * 3 + c] = t + (b - t) * fy;
        }
      }
    }
  });
  return out;
}

// mtcnn's box arithmetic (utils/bboxes.py) on {x1, y1, x2, y2, score}.

function byScore(boxes) {
  // np.argsort(scores)[::-1]: ascending (ties in order), then reversed
  return boxes
    .map((box, i) => [box, i])
    .sort((a, b) => a[0].score - b[0].score || a[1] - b[1])
    .reverse()
    .map(([box]) => box);
}

function overlap(a, b, method) {
  const inter = Math.max(0, Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1)) * Math.max(0, Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1));
  const areaA = (a.x2 - a.x1) * (a.y2 - a.y1);
  const areaB = (b.x2 - b.x1) * (b.y2 - b.y1);
  return inter / (method === "min" ? Math.min(areaA, areaB) : areaA + areaB - inter);
}

/** mtcnn's nms: a box stays unless an earlier one (kept or not) overlaps it above the
 * threshold. */
function nms(boxes, threshold, method, sort) {
  if (sort) boxes = byScore(boxes);
  return boxes.filter((box, j) => {
    for (let i = 0; i < j; i++) if (overlap(boxes[i], box, method) > threshold) return false;
    return true;
  });
}

function square(boxes) {
  return boxes.map((b) => {
    const w = b.x2 - b.x1;
    const h = b.y2 - b.y1;
    const side = Math.max(w, h);
    const x1 = b.x1 + w * 0.5 - side * 0.5;
    const y1 = b.y1 + h * 0.5 - side * 0.5;
    return { ...b, x1, y1, x2: x1 + side, y2: y1 + side };
  });
}

function refine(boxes, offsets, scores) {
  return boxes.map((b, n) => {
    const w = b.x2 - b.x1 + 1;
    const h = b.y2 - b.y1 + 1;
    return {
      x1: b.x1 + offsets[n * 4] * w,
      y1: b.y1 + offsets[n * 4 + 1] * h,
      x2: b.x2 + offsets[n * 4 + 2] * w,
      y2: b.y2 + offsets[n * 4 + 3] * h,
      score: scores[n * 2 + 1],
    };
  });
}

async function stage(session, image, boxes, size, threshold) {
  const patches = cropAndResize(image, boxes, size);
  const out = await session.run({ image: new ort.Tensor("float32", patches, [boxes.length, size, size, 3]) });
  return refine(boxes, out.bbox_reg.data, out.bbox_class.data).filter((b) => b.score > threshold);
}

/** mtcnn's MTCNN().detect_faces on an RGB image (values 0..255): [{box, confidence}]. */
async function mtcnn(sessions, image) {
  const { width: W, height: H } = image;
  const normalized = { width: W, height: H, data: image.data.map((v) => (v - 127.5) / 128) };
  const count = roundHalfEven(-(Math.log(Math.min(W, H) / MIN_SIZE) / Math.log(SCALE_FACTOR) + 1));
  let proposals = [];
  for (let k = 0; k < count; k++) {
    const scale = (MIN_SIZE / MIN_FACE_SIZE) * SCALE_FACTOR ** k;
    const [h, w] = [Math.trunc(H * scale), Math.trunc(W * scale)];
    if (!h || !w) continue;
    const input = new ort.Tensor("float32", resizeArea(normalized, h, w), [1, h, w, 3]);
    const out = await sessions.pnet.run({ image: input });
    const [, ph, pw] = out.bbox_class.dims;
    const reg = out.bbox_reg.data;
    const cls = out.bbox_class.data;
    const found = [];
    for (let y = 0; y < ph; y++) {
      for (let x = 0; x < pw; x++) {
        const i = y * pw + x;
        if (!(cls[i * 2 + 1] > THRESHOLDS.pnet)) continue;
        found.push({
          x1: (2 * x + 1 + reg[i * 4] * 11) / scale,
          y1: (2 * y + 1 + reg[i * 4 + 1] * 11) / scale,
          x2: (2 * x + 12 + reg[i * 4 + 2] * 11) / scale,
          y2: (2 * y + 12 + reg[i * 4 + 3] * 11) / scale,
          score: cls[i * 2 + 1],
        });
      }
    }
    proposals.push(...nms(byScore(found), 0.5, "union", false));
  }
  let boxes = square(nms(proposals, 0.7, "union", true));
  if (!boxes.length) return [];
  boxes = square(nms(await stage(sessions.rnet, normalized, boxes, 24, THRESHOLDS.rnet), 0.7, "union", true));
  if (!boxes.length) return [];
  boxes = nms(await stage(sessions.onet, normalized, boxes, 48, THRESHOLDS.onet), 0.7, "min", true);
  const clamp = (v, n) => Math.min(Math.max(v, 0), n - 1);
  return boxes.map((b) => {
    const [x1, y1, x2, y2] = [clamp(b.x1, W), clamp(b.y1, H), clamp(b.x2, W), clamp(b.y2, H)];
    return { box: [x1, y1, x2 - x1, y2 - y1].map(roundHalfEven), confidence: b.score };
  });
}

/** modules/app/faces.py's detect_faces on ImageData: [{box: [x, y, w, h], confidence}],
 * largest first, in the image's pixels. */
export async function detectFaces(imageData) {
  const { meta, sessions } = await loadDetector();
  const { width, height } = imageData;
  let image = rgbOf(imageData);
  let scale = Math.max(height, width) / meta.detection_side;
  if (scale > 1) {
    const shape = [Math.max(1, roundHalfEven(height / scale)), Math.max(1, roundHalfEven(width / scale))];
    const small = resizeLike({ ...image, data: image.data.map((v) => v / 255) }, ...shape);
    image = { ...small, data: small.data.map((v) => Math.min(255, Math.max(0, roundHalfEven(v * 255)))) };
  } else {
    scale = 1;
  }
  const faces = [];
  for (const found of await mtcnn(sessions, image)) {
    if (found.confidence < meta.min_confidence) continue;
    const [x, y, w, h] = found.box.map((v) => v * scale);
    const left = Math.max(0, roundHalfEven(x));
    const top = Math.max(0, roundHalfEven(y));
    const right = Math.min(width, roundHalfEven(x + w));
    const bottom = Math.min(height, roundHalfEven(y + h));
    if (right > left && bottom > top) faces.push({ box: [left, top, right - left, bottom - top], confidence: found.confidence });
  }
  return faces.sort((a, b) => b.box[2] * b.box[3] - a.box[2] * a.box[3]);
}

// --crop's boxes (modules/app/boxes.py): [x, y, w, h] in pixels.

export function iou(a, b) {
  const inter = Math.max(0, Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0])) * Math.max(0, Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]));
  const union = a[2] * a[3] + b[2] * b[3] - inter;
  return union > 0 ? inter / union : 0;
}

function join(a, b) {
  const [left, top] = [Math.min(a[0], b[0]), Math.min(a[1], b[1])];
  return [left, top, Math.max(a[0] + a[2], b[0] + b[2]) - left, Math.max(a[1] + a[3], b[1] + b[3]) - top];
}

/** The face box grown by `increase` per side into a square, shifted inside the frame. */
export function grow([x, y, w, h], [width, height], increase) {
  let side = roundHalfEven((1 + 2 * increase) * Math.max(w, h));
  side = Math.max(1, Math.min(side, width, height));
  const left = roundHalfEven(x + w / 2 - side / 2);
  const top = roundHalfEven(y + h / 2 - side / 2);
  return [Math.min(Math.max(left, 0), width - side), Math.min(Math.max(top, 0), height - side), side, side];
}

/** The source's crop: the largest face, grown (framing.py's source_faces). */
export async function sourceBox(imageData) {
  const { meta } = await loadDetector();
  const faces = await detectFaces(imageData);
  if (!faces.length) throw new FommError("No face found in the source image: untick Crop to the face, or give a photo with a face.");
  return grow(faces[0].box, [imageData.width, imageData.height], meta.increase);
}

/** One box for the driving clip (framing.py's driving_face): the union of the face's boxes
 * on up to 16 frames spread over the `count` frames (`frameAt(i)` gives frame i's ImageData),
 * grown. The face is the largest of the first sampled frame with one, then followed by
 * overlap. */
export async function drivingBox(count, frameAt, size) {
  const { meta } = await loadDetector();
  const step = Math.max(1, Math.floor(count / meta.driving_samples));
  let union = null;
  let current = null;
  for (let i = 0; i < count; i += step) {
    const faces = await detectFaces(await frameAt(i));
    let face = null;
    if (current === null && faces.length) face = faces[0];
    else {
      let best = 0;
      for (const f of faces) {
        const o = iou(f.box, current || [0, 0, 0, 0]);
        if (o > best) [face, best] = [f, o];
      }
    }
    if (face) {
      current = face.box;
      union = union ? join(union, face.box) : face.box;
    }
  }
  if (!union) throw new FommError("No face found in the driving video: untick Crop to the face, or give a video of a face.");
  return grow(union, size, meta.increase);
}

/** What the page says about the parts it animates: the face boxes with `crop`, else each
 * input that is centre-cropped. `source`, `driving`: [file name, [width, height], box]. */
export function framingNote(crop, source, driving) {
  if (crop) return `Cropped to the face: ${source[0]} at ${source[2].join(",")}, ${driving[0]} at ${driving[2].join(",")} for the whole clip (x,y,w,h in pixels).`;
  const cropped = [source, driving]
    .filter(([, [width, height], box]) => box[2] !== width || box[3] !== height)
    .map(([name, [width, height], box]) => `${name} is ${width}x${height}: centre-cropped to its middle ${box[2]}x${box[3]}`);
  return cropped.length ? `${cropped.join("; ")} (not squashed). Tick Crop to the face to crop around the face instead.` : "";
}

/** paste.py's feather weights of one side: 1 inside, down to 0 over `band` at each edge. */
function ramp(n, band) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.min(1, Math.max(0, (Math.min(i, n - 1 - i) + 0.5) / band));
  return out;
}

/** modules/app/paste.py's paste: `image` (ImageData, the full source) with `animated`
 * (ImageData) resized to `box` and blended in with a feathered edge; a new ImageData. Every
 * pixel outside the box is the source's. */
export function pasteBack(image, animated, box, feather = 0.1) {
  const [x, y, w, h] = box;
  const out = new ImageData(new Uint8ClampedArray(image.data), image.width, image.height);
  const face = resizeLike(rgbOf(animated), h, w);
  const band = Math.max(1, feather * Math.min(h, w));
  const [rows, cols] = [ramp(h, band), ramp(w, band)];
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      const mask = Math.min(rows[j], cols[i]);
      const o = ((y + j) * image.width + x + i) * 4;
      for (let c = 0; c < 3; c++) {
        const blended = Math.fround(out.data[o + c] * (1 - mask) + face.data[(j * w + i) * 3 + c] * mask);
        out.data[o + c] = Math.min(255, Math.max(0, roundHalfEven(blended)));
      }
    }
  }
  return out;
}

// The automation contract of the faces (docs/web.md): PNG data URLs in.

async function detectFacesPng(png) {
  return detectFaces(await decodeImage(png));
}

async function cropBoxes(sourcePng, drivingPngs) {
  const source = await decodeImage(sourcePng);
  const first = await decodeImage(drivingPngs[0]);
  return {
    source: await sourceBox(source),
    driving: await drivingBox(drivingPngs.length, (i) => decodeImage(drivingPngs[i]), [first.width, first.height]),
  };
}

async function pasteBackPng(sourcePng, animatedPng, box) {
  return imageToPng(pasteBack(await decodeImage(sourcePng), await decodeImage(animatedPng), box));
}

Object.assign(window.fomm, { detectFaces: detectFacesPng, cropBoxes, pasteBack: pasteBackPng });
