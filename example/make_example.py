"""Make example/source.png and example/driving.mp4 from a photo that scikit-image ships.

    python example/make_example.py

source.png: a 256x256 face crop of skimage.data.astronaut().
driving.mp4: the same face with the head moved by a smooth synthetic motion (small tilts,
sways, nods and zoom, eased into a still body; 4 s at 25 fps, 256x256, H.264) with an AAC
audio track (a generated tone), so the default command has inputs, audio included, without
downloading anything.
The output is deterministic.
"""

import os
import sys
import tempfile
import wave

import imageio
import numpy as np
from skimage import data, img_as_ubyte
from skimage.transform import warp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from modules.app.audio import add_audio  # noqa: E402
from modules.app.video import VideoWriter  # noqa: E402

SIZE = 256
FPS = 25
SECONDS = 4
CROP = (95.0, 0.0, 260.0)  # x, y, side of the face crop in the 512x512 photo
CENTER = (225.0, 150.0)  # x, y the head turns about (the chin)
HEAD = ((225.0, 105.0), (85.0, 105.0))  # ellipse around the head: centre, radii (x, y)
RATE = 44100


def crop_matrix():
    """Output pixel (x, y, 1) -> photo pixel, for the still crop."""
    x0, y0, side = CROP
    k = side / SIZE
    return np.array([[k, 0, x0], [0, k, y0], [0, 0, 1]])


def motion_matrix(t):
    """Head pose at time t as a photo -> photo map about CENTER; identity at t = 0."""
    angle = np.deg2rad(7 * np.sin(2 * np.pi * t / 2.0))  # tilt
    scale = 1 + 0.05 * np.sin(2 * np.pi * t / 4.0)  # lean in and out
    tx = 10 * np.sin(2 * np.pi * t / 1.6)  # sway
    ty = 6 * np.sin(2 * np.pi * t / 1.0) * np.sin(np.pi * t / 4)  # nods
    cx, cy = CENTER
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    to_origin = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    back = np.array([[1, 0, cx + tx], [0, 1, cy + ty], [0, 0, 1]])
    return back @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ to_origin


def head_weight(xy):
    """1 on the head, easing to 0 on the shoulders and background (a soft ellipse)."""
    (cx, cy), (rx, ry) = HEAD
    r = np.hypot((xy[:, 0] - cx) / rx, (xy[:, 1] - cy) / ry)
    u = np.clip((1.7 - r) / 0.7, 0, 1)
    return u * u * (3 - 2 * u)


def frame(photo, t):
    """The crop with the head moved to its pose at time t and the body (nearly) still."""
    crop, undo = crop_matrix(), np.linalg.inv(motion_matrix(t))

    def inverse_map(xy):  # output pixel -> photo pixel, as warp wants
        q = np.c_[xy, np.ones(len(xy))] @ crop.T
        p = q @ undo.T
        w = head_weight(q[:, :2])[:, None]
        return q[:, :2] + w * (p[:, :2] - q[:, :2])

    return img_as_ubyte(warp(photo, inverse_map, output_shape=(SIZE, SIZE), order=3, mode="edge"))


def write_tone(path, seconds):
    """A soft hum whose pitch follows the nods: mono 16-bit WAV."""
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = 196 * (1 + 0.06 * np.sin(2 * np.pi * t / 1.0))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    wave_ = np.sin(phase) + 0.3 * np.sin(2 * phase) + 0.1 * np.sin(3 * phase)
    fade = np.minimum(1, np.minimum(t, seconds - t) / 0.05)  # no clicks at the ends
    envelope = fade * (0.6 + 0.4 * np.sin(np.pi * t) ** 2)
    samples = np.round(0.25 * 32767 * wave_ * envelope / 1.4).astype("<i2")
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(RATE)
        f.writeframes(samples.tobytes())


def main():
    photo = data.astronaut()
    source = os.path.join(HERE, "source.png")
    driving = os.path.join(HERE, "driving.mp4")

    imageio.v2.imwrite(source, frame(photo, 0.0))

    with VideoWriter(driving, FPS) as writer:
        for i in range(SECONDS * FPS):
            writer.append(frame(photo, i / FPS))
    with tempfile.TemporaryDirectory() as tmp:
        tone = os.path.join(tmp, "tone.wav")
        write_tone(tone, SECONDS)
        if not add_audio(driving, tone):
            sys.exit("could not add the audio track")

    for path in (source, driving):
        print(f"{os.path.relpath(path)}: {os.path.getsize(path) // 1024} KB")


if __name__ == "__main__":
    main()
