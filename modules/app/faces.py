"""Face detection that works offline: MTCNN from the ``mtcnn`` package (MIT), whose weights
ship inside its wheel, so nothing is downloaded at run time.

Chosen over scikit-image's LBP frontal-face cascade by measured accuracy on real photos that
scikit-image ships (``python benchmarks/faces.py``; numbers in docs/faces.md): MTCNN also finds
faces turned sideways and gives far fewer false detections.
"""

import dataclasses

import numpy as np

from .. import extras
from .boxes import iou

# Frames are downscaled to this longest side before detection (crop-video.py used 640): the
# time grows with the pixels, and a face that is still 20 pixels wide after it is found.
DETECTION_SIDE = 1024
# MTCNN's last-stage score for a face; below it, detections on the benchmark's face-free
# photos were as frequent as real faces.
MIN_CONFIDENCE = 0.9


@dataclasses.dataclass(frozen=True)
class Face:
    box: tuple  # (x, y, w, h) in the image's pixels
    confidence: float


_detector = None
# How the errors of a missing mtcnn name it (pyproject.toml's extra "faces").
LABEL = "the face detector mtcnn"


def check_detector(what):
    """A UsageError saying how to install mtcnn when it is missing (``what``: the flag that
    needs it), without importing it (nor TensorFlow, which it imports)."""
    extras.check("mtcnn", "faces", what, LABEL)


def _mtcnn():
    global _detector
    if _detector is None:
        from .cli import import_tensorflow

        import_tensorflow()  # quietly, before mtcnn imports it
        mtcnn = extras.require("mtcnn", "faces", "finding faces (--crop, crop.py)", LABEL)
        _detector = mtcnn.MTCNN(device="CPU:0")
    return _detector


def rgb(image):
    """uint8 (H, W, 3) from a grayscale, gray + alpha, RGB or RGBA image."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] < 3:
        image = np.repeat(image[..., :1], 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


def detect_faces(image, min_confidence=MIN_CONFIDENCE):
    """Faces in a uint8 image, largest first."""
    from skimage import img_as_ubyte
    from skimage.transform import resize

    image = rgb(image)
    height, width = image.shape[:2]
    scale = max(height, width) / DETECTION_SIDE
    small = image
    if scale > 1:
        shape = (max(1, round(height / scale)), max(1, round(width / scale)))
        small = img_as_ubyte(resize(image, shape, anti_aliasing=True))
    else:
        scale = 1.0
    faces = []
    for found in _mtcnn().detect_faces(small):
        if found["confidence"] < min_confidence:
            continue
        x, y, w, h = (float(v) * scale for v in found["box"])
        left, top = max(0, round(x)), max(0, round(y))
        right, bottom = min(width, round(x + w)), min(height, round(y + h))
        if right > left and bottom > top:
            faces.append(Face((left, top, right - left, bottom - top), float(found["confidence"])))
    return sorted(faces, key=lambda f: -f.box[2] * f.box[3])


def best_match(faces, box, min_iou=0.0):
    """The face whose box overlaps ``box`` most (None when none overlaps more than
    ``min_iou``)."""
    scored = [(iou(f.box, box), f) for f in faces]
    scored = [s for s in scored if s[0] > min_iou]
    return max(scored, key=lambda s: s[0])[1] if scored else None
