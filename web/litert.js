// The page's models on LiteRT.js (@litertjs/core: TF Lite on XNNPACK in WebAssembly), for the
// models that `python build.py --web_litert` writes to web/models/NAME-litert/ (model.json
// "runtime": "litertjs (wasm)"). Each of the page's four models becomes a session with the
// interface fomm.js uses of ONNX Runtime's: inputNames, and run(feeds) from and to ort.Tensor.
// The TF Lite files have static batch 1 (LiteRT.js needs static shapes), so a session runs a
// batch one frame at a time: inputs whose batch is the call's batch are split, inputs of batch
// 1 (the source's) and scalars go to every frame, and the outputs are joined again.

import {Tensor, loadAndCompile, loadLiteRt} from "./node_modules/@litertjs/core/dist/index.js";

let runtime = null; // Promise of LiteRT.js's WebAssembly module, loaded once

function load(threads) {
  if (!runtime) {
    const path = new URL("./node_modules/@litertjs/core/wasm/", import.meta.url).href;
    runtime = loadLiteRt(path, {threads: threads > 1});
    runtime.catch(() => (runtime = null));
  }
  return runtime;
}

class Session {
  constructor(model, signature, inputNames, OrtTensor) {
    this.model = model;
    this.signature = signature;
    this.inputNames = inputNames;
    this.OrtTensor = OrtTensor;
  }

  async run(feeds) {
    const batches = Object.values(feeds).map((t) => (t.dims.length ? t.dims[0] : 1));
    const batch = Math.max(1, ...batches);
    const parts = [];
    for (let i = 0; i < batch; i++) parts.push(await this.runOne(feeds, batch, i));
    const out = {};
    for (const name of Object.keys(parts[0])) {
      const first = parts[0][name];
      const data = new Float32Array(first.data.length * batch);
      parts.forEach((part, i) => data.set(part[name].data, i * first.data.length));
      out[name] = new this.OrtTensor("float32", data, [batch, ...first.dims.slice(1)]);
    }
    return out;
  }

  async runOne(feeds, batch, index) {
    const inputs = {};
    for (const [name, tensor] of Object.entries(feeds)) {
      let data = tensor.data;
      let dims = tensor.dims;
      if (batch > 1 && dims.length && dims[0] === batch) {
        const size = data.length / batch;
        data = data.subarray(index * size, (index + 1) * size);
        dims = [1, ...dims.slice(1)];
      }
      inputs[name] = new Tensor(data, Array.from(dims));
    }
    let outputs;
    try {
      outputs = await this.model.run(this.signature, inputs);
    } finally {
      for (const tensor of Object.values(inputs)) tensor.delete();
    }
    const result = {};
    for (const [name, tensor] of Object.entries(outputs)) {
      result[name] = {data: (await tensor.data()).slice(), dims: Array.from(tensor.type.layout.dimensions)};
      tensor.delete();
    }
    return result;
  }
}

/** role -> session, for a model.json of the LiteRT.js runtime. `fetchFile(file)` gives the
 * file's checked bytes (a Uint8Array); `threads`: the WebAssembly threads to run on. */
export async function createSessions(description, fetchFile, threads, OrtTensor) {
  await load(threads);
  const compiled = new Map(); // file -> Promise of its CompiledModel
  const sessions = {};
  for (const [role, entry] of Object.entries(description.models)) {
    if (!compiled.has(entry.file)) {
      compiled.set(entry.file, fetchFile(entry.file).then((bytes) =>
        loadAndCompile(bytes, {accelerator: "wasm", cpuOptions: {numThreads: threads}})));
    }
    sessions[role] = new Session(await compiled.get(entry.file), entry.signature, entry.inputs, OrtTensor);
  }
  return sessions;
}
