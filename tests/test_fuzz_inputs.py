"""Seeded fuzzing of the files a user hands over (tests/input_fuzz.py): damaged videos and
images, random YAML configs and pairs CSVs, each read in a forked child under setrlimit, end
within 10 s and 1 GiB with either a result or a one-line error naming the file."""

import collections
import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def fuzz(tmp_path, seed, count, *kinds):
    result = subprocess.run(
        [sys.executable, str(HERE / "input_fuzz.py"), str(seed), str(count), str(tmp_path)]
        + list(kinds),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == "", result.stderr[-3000:]  # nothing logged beside the outcomes
    return [json.loads(line) for line in result.stdout.splitlines()]


def check(records):
    """Every case ended in bounded time and memory with a result or a one-line error naming
    its file."""
    for record in records:
        assert record["outcome"] in ("ok", "error"), record
        assert record["seconds"] < 10, record
        assert record["peak_kib"] < 2**20, record  # 1 GiB
        if record["outcome"] == "error":
            assert record["path"] in record["detail"], record
            assert "\n" not in record["detail"] and len(record["detail"]) < 400, record


def test_fuzzed_configs_and_pairs_csvs(tmp_path):
    records = fuzz(tmp_path, 7, 80, "config", "pairs")
    assert len(records) == 160
    check(records)
    outcomes = collections.Counter((r["kind"], r["outcome"]) for r in records)
    assert outcomes["config", "error"] > 40 and outcomes["pairs", "error"] > 20, outcomes


def test_fuzzed_videos_and_images(tmp_path):
    records = fuzz(tmp_path, 11, 12, "media", "image")
    assert len(records) == 12 * (4 + 3)
    check(records)
    outcomes = collections.Counter((r["file"], r["outcome"]) for r in records)
    # The damage lands in the headers: some of each kind must be refused (a sanity check).
    for name in ("clip.mp4", "image.png"):
        assert outcomes[name, "error"] > 0, outcomes
