"""Face detectors compared on real photos that scikit-image ships, composed into scenes
whose face boxes are known (tests/face_scenes.py): MTCNN (``mtcnn`` package, the one
modules/app/faces.py uses) and scikit-image's LBP frontal-face cascade.

    python benchmarks/faces.py

A detection counts as a found face when its box overlaps a known face box with an IoU of
at least 0.4 (the detectors draw the box's edges at different places: MTCNN's are taller,
the cascade's square); every other detection is a false one. Prints a Markdown table.
"""

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import face_scenes as scenes  # noqa: E402
import numpy as np  # noqa: E402
from skimage import img_as_ubyte  # noqa: E402
from skimage.transform import resize  # noqa: E402

from modules.app import faces  # noqa: E402
from modules.app.boxes import iou  # noqa: E402

MATCH_IOU = 0.4


def lbp_detector():
    """scikit-image's LBP cascade, on the same downscaled frame as MTCNN, faces >= 20 px."""
    from skimage.data import lbp_frontal_face_cascade_filename
    from skimage.feature import Cascade

    cascade = Cascade(lbp_frontal_face_cascade_filename())

    def detect(image):
        height, width = image.shape[:2]
        scale = max(1.0, max(height, width) / faces.DETECTION_SIDE)
        small = image
        if scale > 1:
            small = img_as_ubyte(resize(image, (round(height / scale), round(width / scale))))
        found = cascade.detect_multi_scale(
            img=small,
            scale_factor=1.2,
            step_ratio=1,
            min_size=(20, 20),
            max_size=small.shape[:2],
        )
        return [
            tuple(round(v * scale) for v in (f["c"], f["r"], f["width"], f["height"]))
            for f in found
        ]

    return detect


def mtcnn_detector(image):
    return [f.box for f in faces.detect_faces(image)]


def cases():
    yield "astronaut photo", *scenes.astronaut()[0:1], [scenes.ASTRONAUT_FACE]
    yield "cameraman photo", scenes.cameraman()[0], [scenes.CAMERAMAN_FACE]
    for scale in (0.35, 0.6, 1.0):
        for mirror in (False, True):
            name = f"astronaut x{scale}{' mirrored' if mirror else ''} in 1280x720"
            yield name, *scenes.astronaut_scene(scale, (400, 100), mirror=mirror, seed=int(mirror))
    yield "astronaut + cameraman, 800x400", *scenes.two_faces()
    yield "100 LFW faces x4 in a grid", *scenes.lfw_grid(faces=True)
    yield "100 LFW non-face patches x4", *scenes.lfw_grid(faces=False)
    for name, image in scenes.face_free():
        yield f"{name} (no face)", image, []


def score(detections, truth):
    """(found, false detections): greedy one-to-one matching at IoU >= MATCH_IOU."""
    unmatched = list(truth)
    false = 0
    for box in detections:
        best = max(unmatched, key=lambda t: iou(box, t), default=None)
        if best is not None and iou(box, best) >= MATCH_IOU:
            unmatched.remove(best)
        else:
            false += 1
    return len(truth) - len(unmatched), false


def main():
    detectors = {"MTCNN": mtcnn_detector, "LBP cascade": lbp_detector()}
    mtcnn_detector(np.zeros((64, 64, 3), np.uint8))  # load the networks outside the timing
    totals = {name: [0, 0, 0, 0.0] for name in detectors}
    print("| scene | faces | " + " | ".join(f"{n} found / false / s" for n in detectors) + " |")
    print("|---|---|" + "---|" * len(detectors))
    for name, image, truth in cases():
        row = []
        for detector, detect in detectors.items():
            start = time.perf_counter()
            found, false = score(detect(image), truth)
            seconds = time.perf_counter() - start
            t = totals[detector]
            t[0], t[1], t[2], t[3] = t[0] + found, t[1] + len(truth), t[2] + false, t[3] + seconds
            row.append(f"{found} / {false} / {seconds:.2f}")
        print(f"| {name} | {len(truth)} | " + " | ".join(row) + " |")
    row = [f"**{t[0]} / {t[2]} / {t[3]:.1f}**" for t in totals.values()]
    print(f"| **all** | {next(iter(totals.values()))[1]} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
