"""Seeded fuzzing of the files a user hands over (tests/input_fuzz.py): damaged videos and
images, random YAML configs and pairs CSVs, each read in a forked child under setrlimit, end
within 10 s and 1 GiB with either a result or a one-line error naming the file."""

import collections
import json
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent

# Faults of modules/app/dataset.py, which another change owns; they are reported (xfail), not
# hidden, until it lands: read_pairs sorts the names of a pairs file, and a short row's missing
# column is None (TypeError); read_pairs names unknown videos as they are (a quoted name with a
# newline breaks the line, a 200 KB name makes a 200 KB line); load_params quotes a bad value
# whole (a 10,000-character string makes a 10,000-character line).
KNOWN_CRASH = "TypeError: '<' not supported between instances of "


def known_dataset_fault(record):
    detail = record["detail"]
    if record["outcome"] == "crash":
        last = detail.strip().splitlines()[-1]
        return "in read_pairs" in detail and last.startswith(KNOWN_CRASH) and "NoneType" in last
    if record["outcome"] != "error" or ("\n" not in detail and len(detail) < 400):
        return False
    return record["kind"] == "pairs" or "model_params" not in detail


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
    its file; returns the cases of the known dataset.py faults, left to an xfail."""
    known = []
    for record in records:
        if known_dataset_fault(record):
            known.append(record)
            continue
        assert record["outcome"] in ("ok", "error"), record
        assert record["seconds"] < 10, record
        assert record["peak_kib"] < 2**20, record  # 1 GiB
        if record["outcome"] == "error":
            assert record["path"] in record["detail"], record
            assert "\n" not in record["detail"] and len(record["detail"]) < 400, record
    return known


def test_fuzzed_configs_and_pairs_csvs(tmp_path):
    records = fuzz(tmp_path, 7, 80, "config", "pairs")
    assert len(records) == 160
    known = check(records)
    outcomes = collections.Counter((r["kind"], r["outcome"]) for r in records)
    assert outcomes["config", "error"] > 40 and outcomes["pairs", "error"] > 20, outcomes
    if known:
        pytest.xfail(f"modules/app/dataset.py: {len(known)} cases of its known faults")


def test_fuzzed_videos_and_images(tmp_path):
    records = fuzz(tmp_path, 11, 12, "media", "image")
    assert len(records) == 12 * (4 + 3)
    assert check(records) == []
    outcomes = collections.Counter((r["file"], r["outcome"]) for r in records)
    # The damage lands in the headers: some of each kind must be refused (a sanity check).
    for name in ("clip.mp4", "image.png"):
        assert outcomes[name, "error"] > 0, outcomes
