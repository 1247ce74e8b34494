"""Seeded fuzzer of the files a user hands over, run by tests/test_fuzz_inputs.py in a fresh
process: driving videos, source images, YAML configs and the dataset modes' pairs CSVs.

``python tests/input_fuzz.py SEED COUNT FOLDER [KIND ...]`` makes small real files (ffmpeg,
Pillow, tifffile, the vox config), writes COUNT damaged or random variants of each, and reads
every one as the scripts do in a forked child limited as tests/checkpoint_fuzz.py limits its
own (address space: this process's plus 1 GiB; 10 s of CPU and of wall clock; the child's
ffmpeg processes share its limits and are killed with it). It prints one JSON line per case:
the kind, how it was made, the outcome ("ok", "error" with the FommError's message, "crash"
with a traceback, or "killed" with the signal), the wall time and the peak resident memory.

Media and images are damaged in their first and last 2 KB, where the sizes, frame counts,
timestamps and rotations live (the files are written with their index first: +faststart).
"""

import json
import os
import pathlib
import random
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
import skimage.transform  # noqa: E402, F401  (imported once here, not in every child)
from checkpoint_fuzz import mutate, read_in_child  # noqa: E402

from modules.app.dataset import load_params, read_pairs  # noqa: E402
from modules.app.images import check_image, driving_frame, read_image  # noqa: E402
from modules.app.probe import ffmpeg_exe, video_stream_info  # noqa: E402
from modules.app.video import VideoReader  # noqa: E402
from modules.convert.config import load_config  # noqa: E402
from modules.errors import FommError  # noqa: E402

HEADER = 2048  # bytes at each end of a media file that the mutations favour
VIDEOS = [f"id{i:02d}.mp4" for i in range(6)]  # the dataset the pairs CSVs name


def ffmpeg(*args):
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *map(str, args)], check=True)


def media_seeds(folder):
    """Small real videos: H.264 mp4 with a rotation, vfr mkv, MPEG-4 avi, gif."""
    source = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-frames:v", "5"]
    rotated = ["-display_rotation", "90", *source]
    paths = {
        "clip.mp4": [*rotated, "-c:v", "libx264", "-movflags", "+faststart"],
        "clip.mkv": [*source, "-vf", "setpts=N*N/TB", "-c:v", "mjpeg"],
        "clip.avi": [*source, "-c:v", "mpeg4"],
        "clip.gif": source,
    }
    for name, args in paths.items():
        ffmpeg(*args, folder / name)
    return [folder / name for name in paths]


def image_seeds(folder):
    """A PNG, a JPEG and a float32 RGB TIFF (which only tifffile reads)."""
    import tifffile
    from PIL import Image

    picture = (np.indices((48, 64)).sum(0) % 256).astype(np.uint8)
    Image.fromarray(np.stack([picture] * 3, -1)).save(folder / "image.png")
    Image.fromarray(picture).save(folder / "image.jpg")
    tifffile.imwrite(folder / "image.tif", np.stack([picture / 255] * 3, -1).astype(np.float32))
    return [folder / name for name in ("image.png", "image.jpg", "image.tif")]


def damaged(path, rng):
    """``path``'s bytes damaged near the header or the end; and how."""
    data = path.read_bytes()
    spans = [(0, min(HEADER, len(data))), (max(0, len(data) - HEADER), len(data))]
    return mutate(data, spans, rng)


# Values a config field may be given in place of a valid one.
ODD_VALUES = [
    0,
    -1,
    2**63,
    10**400,
    1e308,
    float("inf"),
    float("nan"),
    "",
    "x" * 10_000,
    None,
    True,
    [],
    {},
    [1, [2, [3]]],
    {"a": {"b": None}},
    "2020-01-01",
]


def random_config(base, rng):
    """The vox config with a field swapped for an odd value, a section replaced, or its text
    damaged; and how."""
    import yaml

    choice = rng.randrange(4)
    if choice == 0:  # an odd value in a random place
        raw = yaml.safe_load(base)
        node, path = raw, []
        while isinstance(node, dict) and node and rng.random() < 0.8:
            key = rng.choice(sorted(node, key=str))
            path.append(key)
            if not isinstance(node[key], dict):
                break
            node = node[key]
        value = rng.choice(ODD_VALUES)
        if path:
            parent = raw
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = value
        else:
            raw = value
        return yaml.safe_dump(raw, allow_unicode=True), f"value {'.'.join(path)}={value!r:.40}"
    if choice == 1:  # aliases that multiply (billion laughs), maybe into a field
        depth, width = rng.randint(2, 12), rng.randint(2, 12)
        lines = ["l0: &l0 [lol]"]
        lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, depth)]
        text = "\n".join(lines) + "\n" + base.replace("num_kp: 10", f"num_kp: *l{depth - 1}")
        return text, f"laughs {depth}x{width}"
    if choice == 2:  # deep or recursive structure
        n = rng.choice([10, 1000, 100_000])
        text = rng.choice(["[" * n, "{a: " * n, "- " * n, "a: &a [*a]\n", "a: &a {b: *a}\n"])
        return base + "\n" + text, f"structure {text[:12]!r}x{n}"
    data, how = mutate(base.encode(), [(0, len(base))], rng)  # damaged text
    return data.decode("utf-8", errors="surrogateescape"), f"text {how}"


def random_pairs_csv(rng):
    """A pairs CSV: real and unknown names, missing and extra columns, odd quoting, NULs,
    huge fields, a BOM, bad UTF-8; and how."""
    names = [*VIDEOS, *VIDEOS, "", "../etc/passwd", "a,b", '"', "\x00", "é.mp4", '"a\nb"']
    names += ["x" * 200_000] if rng.random() < 0.1 else []
    header = rng.choice(
        ["source,driving", "driving,source,extra", "source", "", "\ufeffsource,driving"]
    )
    rows = [header]
    for _ in range(rng.randint(0, 20)):
        rows.append(",".join(rng.choice(names) for _ in range(rng.randint(0, 4))))
    text = "\n".join(rows)
    if rng.random() < 0.3:
        data, how = mutate(text.encode(), [(0, len(text))], rng)
        return data, f"csv {header!r} rows={len(rows) - 1} {how}"
    return text.encode("utf-8", errors="surrogatepass"), f"csv {header!r} rows={len(rows) - 1}"


def read_media(path):
    video_stream_info(path)
    with VideoReader(path) as reader:
        for frame in reader.frames(0, 30):
            driving_frame(frame, None, (64, 64))


def read_an_image(path):
    check_image(path)
    read_image(path, (64, 64))


def read_a_config(path):
    load_config(path)
    load_params(path)


READERS = {
    "media": read_media,
    "image": read_an_image,
    "config": read_a_config,
    "pairs": lambda path: read_pairs(path, VIDEOS),
}


def cases(seed, count, folder, kinds):
    """(kind, seed file name, how, path) of each case, its file written."""
    rng = random.Random(seed)
    base = (ROOT / "config" / "vox-256.yaml").read_text()
    seeds = {}
    if "media" in kinds:
        seeds["media"] = media_seeds(folder)
    if "image" in kinds:
        seeds["image"] = image_seeds(folder)
    for kind, paths in seeds.items():
        for path in paths:  # each seed reads: and the children find the plugins loaded
            READERS[kind](str(path))
    for kind in kinds:
        for originals in seeds.get(kind, [None]):
            for i in range(count):
                if kind in ("media", "image"):
                    data, how = damaged(originals, rng)
                    name = originals.name
                elif kind == "config":
                    text, how = random_config(base, rng)
                    data, name = text.encode("utf-8", errors="surrogateescape"), "config.yaml"
                else:
                    data, how = random_pairs_csv(rng)
                    name = "pairs.csv"
                path = folder / f"{i}-{name}"
                path.write_bytes(data)
                yield kind, name, how, path


def main(seed, count, folder, kinds):
    folder = pathlib.Path(folder)
    for kind, name, how, path in cases(seed, count, folder, kinds):
        outcome, detail, seconds, peak = read_in_child(READERS[kind], str(path), FommError)
        os.remove(path)
        record = {"kind": kind, "file": name, "mutation": how, "outcome": outcome}
        record.update(detail=detail, seconds=round(seconds, 3), peak_kib=peak, path=str(path))
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:] or list(READERS))
