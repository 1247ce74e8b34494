// Shared by the bench pages: their data format (little-endian float32 arrays as base64)
// and timing.

export function decode(base64) {
  return new Float32Array(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)).buffer);
}

export function encode(array) {
  const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

/** [fn's result, seconds it took]. */
export async function timed(fn) {
  const start = performance.now();
  const result = await fn();
  return [result, (performance.now() - start) / 1000];
}
