"""build.py's manifests (modules/export/manifest.py): the SHA-256 of every exported file,
checked by test.py, testlite.py and the web page before a model loads. Real builds of the
tiny model, real flipped bits."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from helpers import ROOT, build, demo_flags, run_script

from modules.errors import UsageError
from modules.export import manifest

HINT = "python build.py --model tiny-vox"
# Runs a script where ``import tensorflow`` fails (tests/test_checks_before_tensorflow.py).
WITHOUT_TF = (
    "import os, runpy, sys; sys.modules['tensorflow'] = None; sys.argv = sys.argv[1:]; "
    "sys.path.insert(0, os.path.dirname(sys.argv[0])); "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def flip_bit(path, offset=None):
    """Flips the lowest bit of one byte of ``path`` (the middle one by default)."""
    data = bytearray(path.read_bytes())
    offset = len(data) // 2 if offset is None else offset
    data[offset] ^= 1
    path.write_bytes(bytes(data))


def one_error_line(result, *parts):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


# The module on its own: a folder of small files


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "model"
    (root / "generator" / "variables").mkdir(parents=True)
    (root / "generator" / "saved_model.pb").write_bytes(b"graph" * 1000)
    (root / "generator" / "variables" / "variables.index").write_bytes(b"index")
    (root / "process_kp").mkdir()
    (root / "process_kp" / "saved_model.pb").write_bytes(b"other")
    manifest.update(root)
    return root


def test_a_manifest_lists_every_file_with_its_sha256_and_size(folder):
    record = json.loads((folder / "manifest.json").read_text())
    assert record["format"] == manifest.FORMAT
    assert sorted(record["files"]) == [
        "generator/saved_model.pb",
        "generator/variables/variables.index",
        "process_kp/saved_model.pb",
    ]
    entry = record["files"]["generator/saved_model.pb"]
    assert entry["size"] == 5000 and len(entry["sha256"]) == 64
    manifest.verify(folder, ["generator", "process_kp"], HINT)


def test_one_flipped_bit_is_an_error_naming_the_file_and_the_rebuild(folder):
    flip_bit(folder / "generator" / "saved_model.pb")
    with pytest.raises(UsageError) as error:
        manifest.verify(folder, ["generator"], HINT)
    message = str(error.value)
    assert "generator/saved_model.pb does not match its manifest" in message
    assert "manifest.json): the file changed since build.py wrote it" in message
    assert message.endswith(f"rebuild with: {HINT}")
    manifest.verify(folder, ["process_kp"], HINT)  # only what loads is read


def test_an_unlisted_file_in_a_checked_folder_is_an_error(folder):
    (folder / "generator" / "saved_model.pbtxt").write_text("node {}")
    with pytest.raises(UsageError, match="saved_model.pbtxt is not listed in its manifest"):
        manifest.verify(folder, ["generator"], HINT)


def test_a_listed_file_that_is_gone_is_an_error(folder):
    (folder / "generator" / "variables" / "variables.index").unlink()
    with pytest.raises(UsageError, match="variables.index is missing, though its manifest"):
        manifest.verify(folder, ["generator"], HINT)


def test_a_pipe_in_place_of_a_listed_file_is_an_error_not_a_hang(folder):
    index = folder / "generator" / "variables" / "variables.index"
    index.unlink()
    os.mkfifo(index)
    with pytest.raises(UsageError, match="variables.index is not a regular file"):
        manifest.verify(folder, ["generator"], HINT)


def test_a_folder_without_a_manifest_warns_once_and_goes_on(folder, capsys):
    (folder / "manifest.json").unlink()
    manifest.verify(folder, ["generator"], HINT)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: ")
    assert "has no manifest.json" in err[0] and err[0].endswith(f"rebuild with: {HINT}")


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"format": "other", "files": {}}',
        '{"format": "fomm-manifest-1", "files": {"../x": {"sha256": "' + "0" * 64 + '", '
        '"size": 1}}}',
        '{"format": "fomm-manifest-1", "files": {"generator/saved_model.pb": {"size": 1}}}',
    ],
)
def test_a_damaged_manifest_is_an_error(folder, text):
    (folder / "manifest.json").write_text(text)
    with pytest.raises(UsageError, match="is not a manifest that build.py wrote"):
        manifest.verify(folder, ["generator"], HINT)


def test_an_update_replaces_only_the_parts_just_written(folder):
    (folder / "generator" / "saved_model.pb").write_bytes(b"rebuilt")
    manifest.update(folder, ["generator"])
    (folder / "process_kp" / "saved_model.pb").write_bytes(b"changed, not rebuilt")
    manifest.verify(folder, ["generator"], HINT)
    with pytest.raises(UsageError, match="process_kp/saved_model.pb does not match"):
        manifest.verify(folder, ["process_kp"], HINT)


# Real builds: test.py and testlite.py


def copy_build(built, tmp_path):
    """A copy of the tiny vox build (SavedModels and TF Lite models) to damage."""
    root = tmp_path / "build"
    shutil.copytree(built("tiny-vox"), root)
    return root


def script_args(root, script, tmp_path):
    flag = "--saved_models" if script == "test.py" else "--tflite"
    folder = "saved_models" if script == "test.py" else "tflite"
    return [
        "--model",
        "tiny-vox",
        flag,
        str(root / folder),
        *demo_flags(),
        "--output",
        str(tmp_path / "out.mp4"),
    ]


@pytest.mark.slow
def test_build_writes_a_manifest_of_every_file_it_exports(built):
    root = built("tiny-vox")
    saved = root / "saved_models" / "tiny-vox"
    listed = json.loads((saved / "manifest.json").read_text())["files"]
    on_disk = sorted(
        p.relative_to(saved).as_posix()
        for p in saved.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    )
    assert sorted(listed) == on_disk
    assert "generator/saved_model.pb" in listed and "generator/fingerprint.pb" in listed
    lite = json.loads((root / "tflite" / "tiny-vox" / "manifest.json").read_text())["files"]
    assert sorted(lite) == [
        "OPS.md",
        "generator.tflite",
        "kp_detector.tflite",
        "process_kp.tflite",
    ]


@pytest.mark.slow
def test_test_py_refuses_a_saved_model_with_one_flipped_bit(built, tmp_path):
    root = copy_build(built, tmp_path)
    flip_bit(root / "saved_models" / "tiny-vox" / "generator" / "saved_model.pb")
    # Where TensorFlow cannot load: the check comes before it.
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_TF, str(ROOT / "test.py")]
        + script_args(root, "test.py", tmp_path),
        capture_output=True,
        text=True,
    )
    one_error_line(
        result,
        "error: ",
        "saved_models/tiny-vox/generator/saved_model.pb does not match its manifest",
        "saved_models/tiny-vox/manifest.json",
        f"rebuild with: {HINT}",
    )
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.slow
def test_test_py_refuses_an_unlisted_file_in_a_saved_model(built, tmp_path):
    root = copy_build(built, tmp_path)
    extra = root / "saved_models" / "tiny-vox" / "kp_detector" / "assets" / "payload.so"
    extra.parent.mkdir(exist_ok=True)
    extra.write_bytes(b"\x7fELF")
    result = run_script("test.py", *script_args(root, "test.py", tmp_path))
    one_error_line(result, "kp_detector/assets/payload.so is not listed in its manifest")


@pytest.mark.slow
def test_testlite_py_refuses_a_tflite_model_with_one_flipped_bit(built, tmp_path):
    root = copy_build(built, tmp_path)
    flip_bit(root / "tflite" / "tiny-vox" / "generator.tflite")
    result = run_script("testlite.py", *script_args(root, "testlite.py", tmp_path))
    one_error_line(
        result,
        "error: ",
        "tflite/tiny-vox/generator.tflite does not match its manifest (",
        "tflite/tiny-vox/manifest.json): the file changed since build.py wrote it; "
        f"rebuild with: {HINT}",
    )


@pytest.mark.slow
@pytest.mark.parametrize("script", ["test.py", "testlite.py"])
def test_a_clean_build_passes(built, tmp_path, script):
    root = built("tiny-vox")
    result = run_script(script, *script_args(root, script, tmp_path))
    assert result.returncode == 0, result.stderr
    assert "manifest" not in result.stderr, result.stderr
    assert (tmp_path / "out.mp4").is_file()


@pytest.mark.slow
def test_a_build_without_manifests_warns_and_runs(built, tmp_path):
    root = copy_build(built, tmp_path)
    (root / "tflite" / "tiny-vox" / "manifest.json").unlink()
    result = run_script("testlite.py", *script_args(root, "testlite.py", tmp_path))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "manifest" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: "), result.stderr
    assert warnings[0].endswith(f"rebuild with: {HINT}")


# The web page, in a real headless Chromium


@pytest.fixture(scope="module")
def web_models(tmp_path_factory):
    """build.py --web output for the tiny vox model, three times over: as built
    (``tiny-vox``), with one flipped bit in an ONNX file (``tampered``) and without its
    manifest (``unlisted``)."""
    root = tmp_path_factory.mktemp("web-manifest")
    build("tiny-vox", root, "--nolite", "--web", "--web_models", str(root / "models"))
    models = root / "models"
    shutil.copytree(models / "tiny-vox", models / "tampered")
    flip_bit(models / "tampered" / "generator_animate_encoded.onnx")
    shutil.copytree(models / "tiny-vox", models / "unlisted")
    (models / "unlisted" / "manifest.json").unlink()
    return models


def load_model(driver, name):
    """window.fomm.loadModel(name): None when it loads, else the page's message."""
    return driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        window.fomm.loadModel(arguments[0])
          .then(() => done(null), (error) => done(String(error.message)));
        """,
        name,
    )


@pytest.mark.slow
def test_the_web_page_refuses_a_tampered_onnx_file(web_models):
    import browser

    reason = browser.missing()
    if reason:
        pytest.skip(f"no browser here: {reason}")
    with browser.serve(web_models) as url, browser.chromium() as driver:
        browser.open_page(driver, url)
        assert load_model(driver, "tiny-vox") is None
        message = load_model(driver, "tampered")
        assert message == (
            "models/tampered/generator_animate_encoded.onnx does not match its manifest "
            "(models/tampered/manifest.json): the file changed since build.py wrote it; "
            "rebuild with: python build.py --model tampered --web"
        )
        assert load_model(driver, "unlisted") is None
        logs = [entry["message"] for entry in driver.get_log("browser")]
        assert any("models/unlisted has no manifest.json" in line for line in logs), logs


@pytest.mark.slow
def test_the_dataset_modes_check_before_they_load(built, tmp_path):
    """--mode loads through ``Backend.load`` without ``check``: load checks then."""
    import argparse

    from modules.app.backends import Lite

    root = copy_build(built, tmp_path)
    flip_bit(root / "tflite" / "tiny-vox" / "kp_detector.tflite")
    args = argparse.Namespace(
        model="tiny-vox",
        tflite=str(root / "tflite"),
        quantize=None,
        threads=None,
        weight_cache=None,
        no_weight_cache=True,
    )
    with pytest.raises(UsageError, match="kp_detector.tflite does not match its manifest"):
        Lite().load(args)
