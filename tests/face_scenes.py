"""Scenes made of real photos that scikit-image ships, with the faces' known boxes.

``skimage.data.astronaut()`` (Eileen Collins) and ``skimage.data.camera()`` (the
cameraman) are the package's photos of people; ``skimage.data.lfw_subset()`` holds 100
Labeled Faces in the Wild crops (25x25, grayscale) and 100 patches without faces. The face
boxes below were marked by hand (hairline to chin, ear to ear) on the original photos; the
scenes scale, mirror and place the photos on larger backgrounds, and the boxes follow.
"""

import os

import numpy as np
import skimage.data as data
from skimage import img_as_ubyte
from skimage.transform import resize

ASTRONAUT_FACE = (180, 62, 88, 108)  # in the 512x512 skimage.data.astronaut()
CAMERAMAN_FACE = (195, 112, 62, 88)  # in the 512x512 skimage.data.camera()


def rgb(image):
    image = np.asarray(image)
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image[..., :3]


def astronaut():
    return data.astronaut(), ASTRONAUT_FACE


def cameraman():
    return rgb(data.camera()), CAMERAMAN_FACE


def background(shape, seed=0):
    """A face-free real texture (skimage's brick, grass or coffee photo) of ``shape`` (H, W)."""
    source = [data.brick(), data.grass(), data.coffee()][seed % 3]
    return img_as_ubyte(resize(rgb(source), shape, anti_aliasing=True))


def scaled(photo, box, scale, mirror=False):
    """``photo`` resized by ``scale`` (and mirrored), with its face box moved along."""
    height, width = photo.shape[:2]
    shape = (round(height * scale), round(width * scale))
    image = img_as_ubyte(resize(photo, shape, anti_aliasing=True))
    x, y, w, h = (round(v * scale) for v in box)
    if mirror:
        image = image[:, ::-1]
        x = shape[1] - x - w
    return np.ascontiguousarray(image), (x, y, w, h)


def compose(shape, pieces, seed=0):
    """A scene of ``shape`` (H, W): a background with each ``(image, box, (left, top))`` piece
    pasted at ``(left, top)``. Returns (scene uint8 (H, W, 3), face boxes in the scene)."""
    scene = background(shape, seed).copy()
    boxes = []
    for image, box, (left, top) in pieces:
        h, w = image.shape[:2]
        scene[top : top + h, left : left + w] = rgb(image)
        boxes.append((box[0] + left, box[1] + top, box[2], box[3]))
    return scene, boxes


def astronaut_scene(scale=0.5, at=(300, 150), shape=(720, 1280), mirror=False, seed=0):
    """The astronaut, scaled, on a larger background: (scene, [face box])."""
    return compose(shape, [(*scaled(*astronaut(), scale, mirror), at)], seed)


def two_faces(shape=(400, 800)):
    """The astronaut and the cameraman side by side: (scene, [astronaut box, cameraman box])."""
    return compose(
        shape,
        [(*scaled(*astronaut(), 0.6), (40, 60)), (*scaled(*cameraman(), 0.6), (420, 60))],
        seed=1,
    )


def lfw_grid(faces=True, zoom=4, gap=32, columns=10):
    """The 100 LFW face crops (``faces=True``; the tile is the face's box) or the 100 patches
    without faces, enlarged ``zoom`` times, in a grid on a background: (scene, boxes)."""
    tiles = data.lfw_subset()[:100] if faces else data.lfw_subset()[100:]
    size = tiles.shape[1] * zoom
    rows = -(-len(tiles) // columns)
    shape = (gap + rows * (size + gap), gap + columns * (size + gap))
    pieces = []
    for i, tile in enumerate(tiles):
        image = img_as_ubyte(resize(tile, (size, size)))
        left, top = gap + (i % columns) * (size + gap), gap + (i // columns) * (size + gap)
        pieces.append((image, (0, 0, size, size), (left, top)))
    scene, boxes = compose(shape, pieces, seed=2)
    return scene, boxes if faces else []


def face_free():
    """scikit-image's photos without a human face: (name, image) pairs."""
    return [
        ("chelsea (cat)", data.chelsea()),
        ("coffee", data.coffee()),
        ("rocket", data.rocket()),
        ("hubble", data.hubble_deep_field()),
        ("brick", rgb(data.brick())),
    ]


def write_tone(path, seconds, rate=16000):
    """A 440 Hz tone as a mono 16-bit WAV file."""
    import wave

    t = np.arange(int(seconds * rate)) / rate
    samples = np.round(8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(samples.tobytes())


def moving_video(path, tmp_dir, fps=10, frames=(20, 20), shape=(320, 480), scale=0.5):
    """A video with audio of the astronaut drifting slowly, then jumping to the other side of
    the frame: ``frames[0]`` frames at the left, then ``frames[1]`` at the right. Returns the
    face boxes of the first frame of each part."""
    from modules.app.audio import add_audio
    from modules.app.video_writer import VideoWriter

    photo, box = scaled(*astronaut(), scale)
    starts = [(10, 20), (shape[1] - photo.shape[1] - 30, 40)]
    boxes = []
    with VideoWriter(path, fps) as writer:
        for part, count in enumerate(frames):
            left, top = starts[part]
            for i in range(count):
                scene, faces = compose(shape, [(photo, box, (left + i, top))], seed=1)
                writer.append(scene)
                if i == 0:
                    boxes.append(faces[0])
    tone = os.path.join(tmp_dir, "tone.wav")
    write_tone(tone, sum(frames) / fps)
    assert add_audio(path, tone)
    return boxes
