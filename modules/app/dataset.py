"""The original's dataset for ``--mode reconstruction`` and ``--mode animate``: which videos
(frames_dataset.py ``FramesDataset`` with ``is_train=False``), which pairs (``PairedDataset``)
and the config sections those modes read (``reconstruction_params``, ``animate_params``,
``visualizer_params``, ``dataset_params``).
"""

import csv
import dataclasses
import os
import warnings

import numpy as np

from ..convert.config import read_yaml, short
from ..errors import ConfigError, UsageError
from .frames import is_video

# The original's Visualizer defaults (logger.py), used where a config has no visualizer_params.
VISUALIZER_DEFAULTS = {"kp_size": 5, "draw_border": False, "colormap": "gist_rainbow"}
NORMALIZATION_KEYS = ("adapt_movement_scale", "use_relative_movement", "use_relative_jacobian")


@dataclasses.dataclass
class Params:
    """What the dataset modes read from a config."""

    path: str
    root_dir: str = None
    pairs_list: str = None
    num_videos: int = None  # reconstruction_params.num_videos
    reconstruction_format: str = ".mp4"
    num_pairs: int = 50  # animate_params.num_pairs
    animate_format: str = ".mp4"
    normalization: dict = dataclasses.field(
        default_factory=lambda: dict.fromkeys(NORMALIZATION_KEYS, False)
    )
    visualizer: dict = dataclasses.field(default_factory=lambda: dict(VISUALIZER_DEFAULTS))


def load_params(path):
    """Reads the dataset modes' config sections; ConfigError naming the file and field."""
    raw = read_yaml(path)
    raw = raw if isinstance(raw, dict) else {}

    def section(name):
        value = raw.get(name) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"config {path}: {name} must be a mapping, got {short(value)}")
        return value

    def field(name, key, check, what, default):
        value = section(name).get(key, default)
        if value is not None and not check(value):
            raise ConfigError(f"config {path}: {name}.{key} must be {what}, got {short(value)}")
        return value

    def count(value):
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    def extension(value):
        return isinstance(value, str) and value.startswith(".")

    def text(value):
        return isinstance(value, str) and value != ""

    params = Params(path=path)
    params.root_dir = field("dataset_params", "root_dir", text, "a folder path", None)
    params.pairs_list = field("dataset_params", "pairs_list", text, "a CSV path", None)
    params.num_videos = field("reconstruction_params", "num_videos", count, "a count or null", None)
    params.reconstruction_format = field(
        "reconstruction_params", "format", extension, "an extension such as .mp4", ".mp4"
    )
    params.num_pairs = field("animate_params", "num_pairs", count, "a count", 50)
    params.animate_format = field(
        "animate_params", "format", extension, "an extension such as .mp4", ".mp4"
    )
    normalization = field(
        "animate_params", "normalization_params", lambda v: isinstance(v, dict), "a mapping", {}
    )
    for key, value in (normalization or {}).items():
        if key not in NORMALIZATION_KEYS or not isinstance(value, bool):
            raise ConfigError(
                f"config {path}: animate_params.normalization_params.{key} is not one of "
                f"{', '.join(NORMALIZATION_KEYS)} set to true or false"
            )
        params.normalization[key] = value
    for key, value in section("visualizer_params").items():
        checks = {
            "kp_size": (count, "a count"),
            "draw_border": (lambda v: isinstance(v, bool), "true or false"),
            "colormap": (text, "a colormap name"),
        }
        if key not in checks or not checks[key][0](value):
            raise ConfigError(
                f"config {path}: visualizer_params.{key} is not one of kp_size (a count), "
                f"draw_border (true or false), colormap (a name)"
            )
        params.visualizer[key] = value
    return params


def config_relative(value, config_path):
    """A path from a config: as the original, relative to the current folder; where it is not
    there, relative to the config's folder (so a dataset can ship its config beside it)."""
    if os.path.isabs(value) or os.path.exists(value):
        return value
    beside = os.path.join(os.path.dirname(os.path.abspath(config_path)), value)
    return beside if os.path.exists(beside) else value


def dataset_videos(root):
    """``(folder, names)``: the videos the original's test split holds. With ``root/train``
    present, every video in ``root/test``; otherwise every video in ``root`` (the original would
    keep a random 20% there; here all are used). Names are sorted (the original takes
    os.listdir's order); hidden entries and files of no video kind are skipped with a warning."""
    if not os.path.isdir(root):
        raise UsageError(f"dataset folder not found: {root}; pass --dataset DIR")
    folder = root
    if os.path.exists(os.path.join(root, "train")):
        folder = os.path.join(root, "test")
        if not os.path.isdir(folder):
            raise UsageError(
                f"dataset {root} has train/ but no test/ folder; the modes use the videos in "
                f"test/ (the original's layout)"
            )
    try:
        entries = sorted(name for name in os.listdir(folder) if not name.startswith("."))
    except OSError as error:
        raise UsageError(f"cannot list the dataset folder {folder}: {error.strerror}") from None
    videos = [name for name in entries if is_video(os.path.join(folder, name))]
    skipped = [name for name in entries if name not in videos]
    if skipped:
        warnings.warn(
            f"{len(skipped)} entries of {folder} are not videos (.mp4 .mov .gif, a folder of "
            f"frames, a .png/.jpg strip) and are skipped: {', '.join(skipped[:5])}"
            + (" ..." if len(skipped) > 5 else "")
        )
    if not videos:
        raise UsageError(
            f"no videos in the dataset folder {folder}: it needs .mp4, .mov or .gif files, "
            f"folders of frames, or .png/.jpg strips of frames"
        )
    return folder, videos


def read_pairs(path, videos):
    """The original's pairs list (``source`` and ``driving`` columns; others ignored) as
    ``[(source, driving)]``. Unlike the original, which drops pairs naming videos it lacks, a
    missing video is an error: a silently shorter list would skew a comparison."""
    try:
        # utf-8-sig: Excel starts its CSV with a byte order mark, which would join the first
        # column's name ("\ufeffsource")
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
            columns = rows[0].keys() if rows else []
    except FileNotFoundError:
        raise UsageError(f"pairs file not found: {path}; pass --pairs CSV") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UsageError(f"cannot read the pairs file {path}: {error}") from None
    if not rows or "source" not in columns or "driving" not in columns:
        raise UsageError(
            f"pairs file {path} has no rows with 'source' and 'driving' columns "
            f"(the original's pairs_list layout)"
        )
    short_rows = [i + 2 for i, row in enumerate(rows) if None in (row["source"], row["driving"])]
    if short_rows:  # csv gives None for a row's missing columns (line 1 is the header)
        raise UsageError(
            f"pairs file {path}: line {short_rows[0]} has no 'driving' or 'source' value; "
            f"give both on every line"
        )
    pairs = [(row["source"], row["driving"]) for row in rows]
    known = set(videos)
    missing = sorted({name for pair in pairs for name in pair if name not in known})
    if missing:
        # the names as repr, cut short: a name may hold a newline or be 200 KB long
        shown = ", ".join(short(name, 40) for name in missing[:5])
        shown += " ..." if len(missing) > 5 else ""
        raise UsageError(
            f"pairs file {path} names {len(missing)} videos that are not in the dataset: "
            f"{shown}; fix the file or pass --pairs CSV"
        )
    return pairs


def random_pairs(videos, num_pairs):
    """The original's pairs when there is no pairs list: ``num_pairs`` (driving, source) index
    pairs drawn without replacement, seed 0, from the first ``num_pairs`` videos; returned as
    ``[(source, driving)]``."""
    count = min(num_pairs, len(videos))
    grid = np.mgrid[:count, :count].reshape(2, -1).T
    rng = np.random.RandomState(0)  # np.random.seed(0) + np.random.choice, as the original
    chosen = grid.take(rng.choice(grid.shape[0], min(grid.shape[0], num_pairs), replace=False), 0)
    return [(videos[source], videos[driving]) for driving, source in chosen]
