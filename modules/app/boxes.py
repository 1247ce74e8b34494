"""Face boxes: parsing ``x,y,w,h``, checking them against an image, and crop-video.py's box
arithmetic (IoU, union, growing a face box into a square crop).

A box is a tuple ``(x, y, w, h)`` of ints in pixels: ``x`` the left column, ``y`` the top row.
"""

from ..errors import InputError, UsageError


def parse_box(text, flag):
    """``"x,y,w,h"`` -> ``(x, y, w, h)``; a UsageError naming ``flag`` otherwise."""
    parts = str(text).split(",")
    try:
        box = tuple(int(p) for p in parts)
    except ValueError:
        box = ()
    if len(box) != 4 or box[0] < 0 or box[1] < 0 or box[2] < 1 or box[3] < 1:
        raise UsageError(
            f"{flag} {text!r} is not a box: give x,y,w,h in pixels (four integers, "
            f"x and y at least 0, w and h at least 1), e.g. {flag} 120,40,256,256"
        )
    return box


def check_inside(box, size, flag, path):
    """InputError unless ``box`` lies inside an image of ``size`` = (width, height)."""
    x, y, w, h = box
    width, height = size
    if x + w > width or y + h > height:
        raise InputError(
            f"{flag} {x},{y},{w},{h} reaches past the edge of '{path}' ({width}x{height}): "
            f"x + w must be at most {width} and y + h at most {height}"
        )
    return box


def iou(a, b):
    """Intersection over union of two boxes (crop-video.py's ``bb_intersection_over_union``,
    on (x, y, w, h) boxes with exclusive ends instead of its inclusive corners)."""
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def join(a, b):
    """The smallest box holding both (crop-video.py's ``join``)."""
    left, top = min(a[0], b[0]), min(a[1], b[1])
    right, bottom = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return (left, top, right - left, bottom - top)


def grow(box, size, increase=0.1):
    """crop-video.py's ``compute_bbox``: the face box grown by ``increase`` of its size on
    each side and made square (side ``(1 + 2 * increase) * max(w, h)``, same centre).

    Where crop-video.py clips the square at the frame's edges (and so distorts the crop when
    it is scaled to 256x256), this shifts it inside the frame to stay square, and shrinks it
    only when it is larger than the frame's shorter side. ``size`` = (width, height).
    """
    x, y, w, h = box
    width, height = size
    side = int(round((1 + 2 * increase) * max(w, h)))
    side = max(1, min(side, width, height))
    left = int(round(x + w / 2 - side / 2))
    top = int(round(y + h / 2 - side / 2))
    left = min(max(left, 0), width - side)
    top = min(max(top, 0), height - side)
    return (left, top, side, side)


def crop(image, box):
    """The pixels of ``image`` (H, W, ...) inside ``box``."""
    x, y, w, h = box
    return image[y : y + h, x : x + w]
