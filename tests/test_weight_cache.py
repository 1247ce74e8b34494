"""XNNPACK's packed weights kept between runs (modules/app/weight_cache.py, testlite.py
--weight_cache): written once, mapped by later runs, packed again for a model rebuilt in place,
never a reason for other frames, and never a reason for a run to fail."""

import os
import shutil

import numpy as np
import pytest
from helpers import demo_flags, model_args, process_kp_inputs, read_frames, run_script

from modules.app.pipeline import named, take
from modules.app.sources import LiteModels
from modules.app.weight_cache import IDENTITY, WEIGHTS, WeightCache

pytestmark = pytest.mark.slow  # each needs the tiny models built


def outputs(models):
    """Every signature of ``models`` on fixed inputs: keypoints, normalized keypoints and the
    generator's outputs for a batch of 3 driving images."""
    rng = np.random.default_rng(0)
    source = rng.random((1, *models.frame_shape, 3), dtype=np.float32)
    driving = rng.random((3, *models.frame_shape, 3), dtype=np.float32)
    kp_source = models.kp_detector(image=source)
    kp_driving = models.kp_detector(image=driving)
    kp_norm = models.process_kp(**process_kp_inputs(kp_source, kp_driving, take(kp_driving, 0)))
    encoded = models.encode_source(source_image=source)
    keypoints = {**named("source", kp_source), **named("driving", kp_norm)}
    whole = models.generator(source_image=source, **keypoints)
    return {
        **{f"kp_{k}": v for k, v in kp_driving.items()},
        **{f"norm_{k}": v for k, v in kp_norm.items()},
        **models.animate_encoded(**encoded, **keypoints),
        **{f"whole_{k}": v for k, v in whole.items()},
    }


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def cached_files(root):
    """{model folder name: sorted file names} under a cache root."""
    return {name: sorted(os.listdir(root / name)) for name in sorted(os.listdir(root))}


def weights_inodes(root):
    return {name: os.stat(root / name / WEIGHTS).st_ino for name in os.listdir(root)}


@pytest.mark.parametrize("case", ["tiny-vox", "tiny-mgif"])
def test_packed_weights_are_written_once_then_mapped_with_the_same_frames(tmp_path, built, case):
    folder = built(case) / "tflite" / case
    in_memory = outputs(LiteModels(folder, "build.py"))
    root = tmp_path / "cache"
    first = outputs(LiteModels(folder, "build.py", weight_cache=WeightCache(str(root))))
    files = cached_files(root)
    assert len(files) == 3 and all(names == [IDENTITY, WEIGHTS] for names in files.values())
    inodes = weights_inodes(root)
    second = outputs(LiteModels(folder, "build.py", weight_cache=WeightCache(str(root))))
    assert cached_files(root) == files
    assert weights_inodes(root) == inodes, "the second load packed again instead of mapping"
    assert_same(first, in_memory)
    assert_same(second, in_memory)


def test_a_model_rebuilt_in_place_is_packed_again(tmp_path, built):
    """Other weights (here another model's files copied over the first's) at the same paths:
    the cached weights no longer match and are not used."""
    folder = tmp_path / "tflite"
    shutil.copytree(built("tiny-vox") / "tflite" / "tiny-vox", folder)
    root = tmp_path / "cache"
    outputs(LiteModels(folder, "build.py", weight_cache=WeightCache(str(root))))
    inodes = weights_inodes(root)
    for name in os.listdir(folder):
        shutil.copy(built("tiny-mgif") / "tflite" / "tiny-mgif" / name, folder / f".{name}")
        os.replace(folder / f".{name}", folder / name)  # as build.py writes them
    cached = outputs(LiteModels(folder, "build.py", weight_cache=WeightCache(str(root))))
    assert all(inodes[name] != inode for name, inode in weights_inodes(root).items())
    assert_same(cached, outputs(LiteModels(folder, "build.py")))


def test_no_room_or_no_folder_packs_in_memory(tmp_path, built, monkeypatch):
    folder = built("tiny-vox") / "tflite" / "tiny-vox"
    expected = outputs(LiteModels(folder, "build.py"))
    (tmp_path / "file").write_text("not a folder")
    blocked = WeightCache(str(tmp_path / "file" / "cache"))
    assert_same(outputs(LiteModels(folder, "build.py", weight_cache=blocked)), expected)
    monkeypatch.setattr("modules.app.weight_cache.HEADROOM", 2**62)  # a full disk
    full = tmp_path / "full"
    assert_same(
        outputs(LiteModels(folder, "build.py", weight_cache=WeightCache(str(full)))), expected
    )
    assert not any(files for files in cached_files(full).values())


def test_temporary_weights_of_ended_runs_are_removed(tmp_path, built):
    folder = built("tiny-vox") / "tflite" / "tiny-vox"
    cache = WeightCache(str(tmp_path))
    model = str(folder / "generator.tflite")
    entry = cache.entry(model)
    entry.discard()
    parent = os.path.dirname(entry.path)
    # modules/atomic.py's temporaries of weights.xnnpack: .weights.tmp-PID-HEX.xnnpack
    ended = os.path.join(parent, ".weights.tmp-999999999-0123abcd.xnnpack")  # no such process
    running = os.path.join(parent, f".weights.tmp-{os.getppid()}-0123abcd.xnnpack")
    for path in (ended, running):
        with open(path, "wb") as f:
            f.write(b"partial")
    cache.entry(model).discard()
    assert not os.path.exists(ended) and os.path.exists(running)


def test_testlite_weight_cache_flags(tmp_path, built):
    """testlite.py keeps the packed weights by default (here under the tests' own
    $XDG_CACHE_HOME), under --weight_cache DIR when given, and nowhere with
    --no_weight_cache; the frames are the same each time. A --weight_cache that cannot be a
    folder is a one-line error before any model loads."""
    common = [
        *model_args("testlite.py", "tiny-vox", built),
        *demo_flags(),
        "--relative",
        "--adapt_scale",
        "--frames",
        "5",
    ]
    runs = {
        "default": [],
        "chosen": ["--weight_cache", str(tmp_path / "chosen")],
        "chosen again": ["--weight_cache", str(tmp_path / "chosen")],
        "none": ["--no_weight_cache", "--weight_cache", str(tmp_path / "unused")],
    }
    frames = {}
    for name, flags in runs.items():
        out = tmp_path / "frames" / name
        result = run_script("testlite.py", *common, *flags, "--output", f"{out}/")
        assert result.returncode == 0, result.stderr
        frames[name] = read_frames(out)
    for name in runs:
        np.testing.assert_array_equal(frames[name], frames["default"])
    assert len(os.listdir(tmp_path / "chosen")) == 3
    assert not os.path.exists(tmp_path / "unused")
    assert len(os.listdir(os.path.join(os.environ["XDG_CACHE_HOME"], "fomm-tf", "xnnpack"))) >= 3
    (tmp_path / "file").write_text("not a folder")
    result = run_script(
        "testlite.py",
        *common,
        "--weight_cache",
        str(tmp_path / "file" / "c"),
        "--output",
        str(tmp_path / "x.mp4"),
    )
    assert result.returncode == 2 and "is not a folder" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def damaged(data, damage):
    """``data`` truncated, replaced by noise, or with bytes changed in its first 20 KB (the
    flatbuffer's tables, before the weights)."""
    if damage == "truncated":
        return data[: len(data) // 2]
    if damage == "noise":
        return np.random.default_rng(0).integers(0, 256, len(data), np.uint8).tobytes()
    scrambled = np.frombuffer(data, np.uint8).copy()
    rng = np.random.default_rng(1)
    scrambled[rng.integers(0, 20_000, 20)] = rng.integers(0, 256, 20)
    return scrambled.tobytes()


@pytest.mark.parametrize("damage", ["truncated", "noise", "tables"])
def test_a_damaged_model_is_one_line_and_leaves_no_weights(tmp_path, built, damage):
    """LiteRT's CompiledModel crashes the process on a damaged flatbuffer: the file is
    verified first (modules/app/litert.py). The manifest is made to list the damaged file, as
    for a model that was damaged before build.py hashed it."""
    from modules.export.manifest import update

    folder = tmp_path / "tflite" / "tiny-vox"
    shutil.copytree(built("tiny-vox") / "tflite" / "tiny-vox", folder)
    path = folder / "generator.tflite"
    path.write_bytes(damaged(path.read_bytes(), damage))
    update(folder, ["generator.tflite"])
    result = run_script(
        "testlite.py",
        "--model",
        "tiny-vox",
        "--tflite",
        str(tmp_path / "tflite"),
        *demo_flags(),
        "--weight_cache",
        str(tmp_path / "cache"),
        "--output",
        str(tmp_path / "out.mp4"),
    )
    assert result.returncode == 2, result.stderr
    assert f"cannot load the TF Lite model {path}" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    left = [name for files in cached_files(tmp_path / "cache").values() for name in files]
    assert not any(".tmp-" in name for name in left), left
    assert not (tmp_path / "out.mp4").exists()
