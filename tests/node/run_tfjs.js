// Runs TF.js graph models written by `build.py --tfjs` in Node, for tests/test_tfjs.py.
//
//   node run_tfjs.js REQUEST.json RESULT.json
//
// REQUEST: {"backend": "cpu" | "wasm", "calls": [{"model": DIR, "inputs": {NAME: ARRAY}}]}
// RESULT:  {"backend": ..., "results": [{NAME: ARRAY}, ...]}, one per call, in order.
// ARRAY:   {"shape": [...], "data": base64 of little-endian float32}.
'use strict';

const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');

function decode(array) {
  const bytes = Buffer.from(array.data, 'base64');
  const floats = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  return tf.tensor(Float32Array.from(floats), array.shape, 'float32');
}

function encode(tensor) {
  const data = Buffer.from(tensor.dataSync().buffer).toString('base64');
  return { shape: tensor.shape, data };
}

// tf.loadGraphModel reads URLs; in Node (without tfjs-node) the files are read here.
function loadModel(dir) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const weightSpecs = [];
  const buffers = [];
  for (const group of json.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const shard of group.paths) buffers.push(fs.readFileSync(path.join(dir, shard)));
  }
  const weights = Buffer.concat(buffers);
  return tf.loadGraphModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy,
      signature: json.signature,
      userDefinedMetadata: json.userDefinedMetadata,
      weightSpecs,
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.length),
    })
  );
}

async function main() {
  const [requestPath, resultPath] = process.argv.slice(2);
  const request = JSON.parse(fs.readFileSync(requestPath, 'utf8'));
  if (request.backend === 'wasm') {
    wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), path.sep));
  }
  if (!(await tf.setBackend(request.backend))) throw new Error(`backend ${request.backend} failed`);
  await tf.ready();
  const models = {};
  const results = [];
  for (const call of request.calls) {
    if (!models[call.model]) models[call.model] = await loadModel(call.model);
    const model = models[call.model];
    const inputs = {};
    for (const [name, array] of Object.entries(call.inputs)) inputs[name] = decode(array);
    // Inputs and outputs by their signature names (model.json's "signature").
    const names = Object.keys(model.modelSignature.outputs);
    const out = await model.executeAsync(inputs, names);
    const result = {};
    names.forEach((name, i) => {
      result[name] = encode(out[i]);
      out[i].dispose();
    });
    Object.values(inputs).forEach((t) => t.dispose());
    results.push(result);
  }
  fs.writeFileSync(resultPath, JSON.stringify({ backend: tf.getBackend(), results }));
}

main().catch((error) => {
  console.error(`error: ${error.message}`);
  process.exit(1);
});
