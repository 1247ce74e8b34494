// window.webgpuBench: the page's web models (build.py --web, models/NAME/) on ONNX Runtime
// Web's "webgpu" or "wasm" execution provider: keypoints, encode_source and animate_encoded
// of one frame (batch 1, absolute motion: process_kp is left out). Inputs and outputs travel
// as base64 of little-endian float32.
import * as ort from "../node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs";
import {decode, encode, timed} from "./common.js";

ort.env.wasm.wasmPaths = new URL("../node_modules/onnxruntime-web/dist/", import.meta.url).href;
ort.env.wasm.numThreads = self.crossOriginIsolated ? navigator.hardwareConcurrency || 1 : 1;

/** What navigator.gpu offers: {adapter: description} or {reason}. */
async function adapter() {
  if (!("gpu" in navigator)) {
    return {reason: `navigator.gpu is undefined (isSecureContext ${self.isSecureContext})`};
  }
  let found;
  try {
    found = await navigator.gpu.requestAdapter();
  } catch (error) {
    return {reason: `navigator.gpu.requestAdapter() threw ${error}`};
  }
  if (!found) return {reason: "navigator.gpu.requestAdapter() gave null (no adapter)"};
  const info = found.info || {};
  return {adapter: [info.vendor, info.architecture, info.device, info.description]
    .filter(Boolean).join(" ")};
}

async function run({model, ep, repeats, source, driving}) {
  const description = await (await fetch(`../models/${model}/model.json`)).json();
  const sessions = {};
  const start = performance.now();
  for (const [key, file] of Object.entries(description.files)) {
    const bytes = new Uint8Array(await (await fetch(`../models/${model}/${file}`)).arrayBuffer());
    sessions[key] = await ort.InferenceSession.create(bytes, {
      executionProviders: [ep], graphOptimizationLevel: "all"});
  }
  const report = {load_s: (performance.now() - start) / 1000};
  const image = (data) => new ort.Tensor("float32", decode(data), [1, 256, 256, 3]);
  const kpSource = await sessions.kp_detector.run({image: image(source)});
  const [kpDriving, kpS] = await timed(() => sessions.kp_detector.run({image: image(driving)}));
  const [encoded, encodeS] = await timed(() =>
    sessions.encode_source.run({source_image: image(source)}));
  const feeds = {
    source_features: encoded.source_features,
    source_motion_image: encoded.source_motion_image,
    kp_source_value: kpSource.value,
    kp_source_jacobian: kpSource.jacobian,
    kp_driving_value: kpDriving.value,
    kp_driving_jacobian: kpDriving.jacobian,
  };
  const times = [];
  let out;
  for (let i = 0; i < repeats; i++) {
    const [result, s] = await timed(() => sessions.animate_encoded.run(feeds));
    out = result;
    times.push(s);
  }
  Object.assign(report, {kp_detector_s: kpS, encode_source_s: encodeS, animate_encoded_s: times});
  report.prediction = encode(await out.prediction.getData());
  for (const session of Object.values(sessions)) await session.release();
  return report;
}

const fail = (error) => ({error: String((error && error.stack) || error)});
window.webgpuBench = {
  adapter: () => adapter().catch(fail),
  run: (options) => run(options).catch(fail),
};
document.getElementById("status").textContent = "ready";
