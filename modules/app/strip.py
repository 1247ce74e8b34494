"""The dataset modes' PNG strip (every prediction side by side: uint8 [H, frames * W, 3]) built
without holding it in memory.

A PNG stores whole rows, and each row of the strip crosses every frame, so no row is known
before the last frame. The frames go to a file as they come (``append``); ``png`` then encodes
the strip a few rows at a time, reading each frame's part of those rows back. Memory stays at
a few MB whatever the video's length (the strip itself was 196 MB at 1000 frames of 256x256,
and was held three times over: the frames, their concatenation and the encoder's copy).

The encoding is the PNG format's own (zlib, and per row the filter of least absolute sum, the
heuristic of libpng and Pillow), so any PNG reader reads the same pixels as from imageio's.
"""

import os
import struct
import zlib

import numpy as np

BLOCK_BYTES = 4 * 1024**2  # the rows encoded at a time: about this much of the strip
IDAT_BYTES = 1024**2  # the compressed bytes per IDAT chunk


class StripFile:
    """Frames appended to ``path`` (uint8 [H, W, 3] each, all one size); ``png()`` encodes
    them side by side."""

    def __init__(self, path, block_bytes=BLOCK_BYTES):
        self.path = path
        self.block_bytes = block_bytes
        self.file = open(path, "w+b")
        self.frames = 0
        self.shape = None

    def append(self, frames):
        frames = np.ascontiguousarray(frames, np.uint8)
        if self.shape is None:
            self.shape = frames.shape[1:]
        self.file.write(frames.tobytes())
        self.frames += len(frames)

    def png(self):
        """The PNG file's bytes."""
        self.file.flush()
        height, width, channels = self.shape
        frame_bytes = height * width * channels
        row_bytes = self.frames * width * channels
        step = max(1, self.block_bytes // row_bytes)
        chunks = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB",
                  self.frames * width, height, 8, 2, 0, 0, 0))]  # fmt: skip
        compressor, pending, previous = zlib.compressobj(6), [], np.zeros(row_bytes, np.uint8)
        fd = self.file.fileno()
        for top in range(0, height, step):
            rows = min(step, height - top)
            block = np.empty((rows, self.frames, width * channels), np.uint8)
            for f in range(self.frames):
                data = os.pread(
                    fd, rows * width * channels, f * frame_bytes + top * width * channels
                )
                block[:, f] = np.frombuffer(data, np.uint8).reshape(rows, width * channels)
            block = block.reshape(rows, row_bytes)
            for row in block:
                pending.append(compressor.compress(filtered(row, previous, channels)))
                previous = row
            if sum(map(len, pending)) >= IDAT_BYTES:
                chunks.append(chunk(b"IDAT", b"".join(pending)))
                pending = []
        pending.append(compressor.flush())
        chunks += [chunk(b"IDAT", b"".join(pending)), chunk(b"IEND", b"")]
        return b"".join(chunks)

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def filtered(row, previous, bpp):
    """The filter-type byte and the filtered row: of PNG's five filters, the one whose bytes
    (read as signed) have the least absolute sum."""
    x = row.astype(np.int16)
    b = previous.astype(np.int16)
    a = np.concatenate([np.zeros(bpp, np.int16), x[:-bpp]])
    c = np.concatenate([np.zeros(bpp, np.int16), b[:-bpp]])
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    candidates = (x, x - a, x - b, x - (a + b) // 2, x - paeth)
    best, best_cost = None, None
    for kind, values in enumerate(candidates):
        out = (values & 0xFF).astype(np.uint8)
        cost = int(np.abs(out.view(np.int8).astype(np.int32)).sum())
        if best_cost is None or cost < best_cost:
            best, best_cost = bytes([kind]) + out.tobytes(), cost
    return best
