// window.litertBench.run(options): loads TF Lite models in LiteRT.js's WebAssembly (XNNPACK)
// CPU backend and times them; driven by benchmarks/bench_litertjs.py. Inputs and outputs
// travel as base64 of little-endian float32. timeFile(options) times one file's signature
// (benchmarks/bench_conv_wasm.py).
import {Tensor, loadAndCompile, loadLiteRt} from "../node_modules/@litertjs/core/dist/index.js";
import {decode, encode, timed} from "./common.js";

async function runSignature(model, name, arrays, shapes) {
  const inputs = {};
  for (const [key, array] of Object.entries(arrays)) inputs[key] = new Tensor(array, shapes[key]);
  const outputs = await model.run(name, inputs);
  for (const tensor of Object.values(inputs)) tensor.delete();
  const result = {};
  for (const [key, tensor] of Object.entries(outputs)) {
    result[key] = (await tensor.data()).slice();
    tensor.delete();
  }
  return result;
}

let runtime = null; // LiteRT.js loads once per page

function load(threads) {
  runtime = runtime || loadLiteRt("../node_modules/@litertjs/core/wasm/", {threads});
  return runtime;
}

async function run({dir, threads, numThreads, repeats, inputs}) {
  const report = {crossOriginIsolated: self.crossOriginIsolated};
  await load(threads);
  const options = {accelerator: "wasm", cpuOptions: {numThreads}};
  const [kp, kpLoad] = await timed(() => loadAndCompile(`${dir}/kp_detector.tflite`, options));
  const [generator, genLoad] = await timed(() => loadAndCompile(`${dir}/generator.tflite`, options));
  report.load_s = {kp_detector: kpLoad, generator: genLoad};
  report.signatures = Object.keys(generator.signatures);
  report.inputs = generator.signatures.animate_encoded.getInputDetails()
    .map((d) => `${d.name} ${d.dtype} [${Array.from(d.shape)}]`);

  const image = [1, 256, 256, 3];
  const arrays = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, decode(v)]));
  const [encoded, encodeS] = await timed(() => runSignature(
    generator, "encode_source", {source_image: arrays.source_image}, {source_image: image}));
  report.encode_source_s = encodeS;
  const kpTimes = [];
  let keypoints;
  for (let i = 0; i < repeats; i++) {
    const [out, s] = await timed(() =>
      runSignature(kp, "serving_default", {image: arrays.driving_image}, {image}));
    keypoints = out;
    kpTimes.push(s);
  }
  report.kp_detector_s = kpTimes;
  report.kp_value = encode(keypoints.value);
  const animateArrays = {
    ...encoded,
    kp_source_value: arrays.kp_source_value,
    kp_source_jacobian: arrays.kp_source_jacobian,
    kp_driving_value: arrays.kp_driving_value,
    kp_driving_jacobian: arrays.kp_driving_jacobian,
  };
  const animateShapes = {
    source_features: [1, 64, 64, 256], source_motion_image: [1, 64, 64, 3],
    kp_source_value: [1, 10, 2], kp_source_jacobian: [1, 10, 2, 2],
    kp_driving_value: [1, 10, 2], kp_driving_jacobian: [1, 10, 2, 2],
  };
  const animateTimes = [];
  let animated;
  for (let i = 0; i < repeats; i++) {
    const [out, s] = await timed(() =>
      runSignature(generator, "animate_encoded", animateArrays, animateShapes));
    animated = out;
    animateTimes.push(s);
  }
  report.animate_encoded_s = animateTimes;
  report.prediction = encode(animated.prediction);
  kp.delete();
  generator.delete();
  return report;
}

/** Seconds of each of `repeats` runs of `file`'s one signature, on inputs of sin(i) / 2. */
async function timeFile({file, threads, numThreads, repeats}) {
  await load(threads);
  const model = await loadAndCompile(file, {accelerator: "wasm", cpuOptions: {numThreads}});
  const name = Object.keys(model.signatures)[0];
  const arrays = {};
  const shapes = {};
  for (const detail of model.signatures[name].getInputDetails()) {
    shapes[detail.name] = Array.from(detail.shape);
    const array = new Float32Array(shapes[detail.name].reduce((a, b) => a * b, 1));
    for (let i = 0; i < array.length; i++) array[i] = Math.sin(i) / 2;
    arrays[detail.name] = array;
  }
  const times = [];
  for (let i = 0; i < repeats; i++) {
    times.push((await timed(() => runSignature(model, name, arrays, shapes)))[1]);
  }
  model.delete();
  return times;
}

const reported = (fn) => (options) =>
  fn(options).catch((error) => ({error: String(error && error.stack || error)}));
window.litertBench = {run: reported(run), timeFile: reported(timeFile)};
document.getElementById("status").textContent = "ready";
