// Frames to the model's square size: the centred square of a frame, scaled. A camera (or a
// video) of another shape would be squashed otherwise, and a squashed face moves wrongly.

/** The centred square of a width x height frame: {x, y, size}, in the frame's pixels. */
export function centreSquare(width, height) {
  const size = Math.min(width, height);
  return { x: Math.floor((width - size) / 2), y: Math.floor((height - size) / 2), size };
}

/** The centred square of `source` (an image, video or canvas of width x height pixels)
 * scaled to w x h with the browser's high-quality smoothing, drawn on `canvas`; returns it as
 * ImageData. */
export function centreCrop(source, width, height, w, h, canvas = document.createElement("canvas")) {
  const { x, y, size } = centreSquare(width, height);
  canvas.width = w;
  canvas.height = h;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = "high";
  context.drawImage(source, x, y, size, size, 0, 0, w, h);
  return context.getImageData(0, 0, w, h);
}
