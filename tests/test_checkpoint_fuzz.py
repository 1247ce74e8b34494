"""Seeded fuzzing of the checkpoint reader (tests/checkpoint_fuzz.py): 300 damaged copies of
the two fixture checkpoints, each read in a forked child under setrlimit, end within 10 s and
1 GiB with either a good load or a one-line CheckpointError naming the file."""

import collections
import json
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
MUTANTS_PER_FIXTURE = 150


@pytest.mark.slow
def test_fuzzed_checkpoints_end_in_bounded_time_and_memory(tmp_path):
    result = subprocess.run(
        [sys.executable, str(HERE / "checkpoint_fuzz.py"), "13", str(MUTANTS_PER_FIXTURE)]
        + [str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 2 * MUTANTS_PER_FIXTURE
    for record in records:
        assert record["outcome"] in ("ok", "error"), record
        assert record["seconds"] < 10, record
        assert record["peak_kib"] < 2**20, record  # 1 GiB
        if record["outcome"] == "error":
            assert record["detail"].startswith(record["path"] + ": "), record
            assert "\n" not in record["detail"], record
    outcomes = collections.Counter((r["file"], r["outcome"]) for r in records)
    # Most mutants land in structure, so most must be refused (a sanity check of the fuzzer).
    for name in ("tiny-vox-cpk.pth.tar", "tiny-mgif-cpk.pth.tar"):
        assert outcomes[name, "error"] > MUTANTS_PER_FIXTURE // 2, outcomes
