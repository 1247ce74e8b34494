"""The pip package: a wheel built from a clone of this repository installs ``fomm_tf`` and the
console scripts into an empty folder, and they work from a folder outside the checkout, with
nothing of the checkout on the path (its configs travel inside the package)."""

import os
import subprocess
import sys

import pytest
from helpers import ROOT, checkpoint_path, config_path, demo, demo_flags, read_frames


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(folder the wheel was installed into, an empty working folder outside the checkout)."""
    base = tmp_path_factory.mktemp("package")
    clone = base / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{ROOT}", clone], check=True)
    wheels = base / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", wheels, clone],
        check=True,
        cwd=base,
    )
    (wheel,) = wheels.glob("fomm_tf-*.whl")
    target = base / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target, wheel],
        check=True,
    )
    work = base / "work"
    work.mkdir()
    return target, work


def run(installed, *command):
    """A command in the working folder, with the installed package (and not the checkout)
    on the path; the dependencies come from this environment."""
    target, work = installed
    env = dict(os.environ, PYTHONPATH=str(target))
    return subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)


def test_fomm_tf_animates_outside_the_checkout(installed):
    code = f"""
import fomm_tf, numpy as np
assert fomm_tf.__file__.startswith({str(installed[0])!r}), fomm_tf.__file__
try:
    import modules
    raise SystemExit("the checkout's package is importable")
except ImportError:
    pass
animator = fomm_tf.Animator.from_checkpoint({str(config_path("tiny-vox"))!r},
                                            {str(checkpoint_path("tiny-vox"))!r})
frames = animator.animate({str(demo("tiny-vox") / "source.png")!r},
                          {str(demo("tiny-vox") / "driving.mp4")!r}, relative=True,
                          adapt_scale=True, best_frame=3)
expected = np.load({str(demo("tiny-vox") / "expected.npz")!r})["frames_rel_adapt_best3"]
assert np.abs(np.stack(frames).astype(int) - expected).max() <= 1
print("ok", len(frames))
"""
    result = run(installed, sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["ok", "8"]


def script(installed, name):
    return str(installed[0] / "bin" / name)


@pytest.mark.parametrize(
    "name",
    ["fomm-build", "fomm-run", "fomm-test", "fomm-testlite", "fomm-live", "fomm-serve"],
)
def test_console_scripts_show_their_help(installed, name):
    result = run(installed, script(installed, name), "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {name} ")


def test_the_package_carries_the_original_configs(installed):
    """No config/ in the working folder: the eight configs come from the package."""
    result = run(installed, script(installed, "fomm-build"), "--model", "nope")
    assert result.returncode == 2
    assert "(known models: bair, fashion, mgif, nemo, taichi, taichi-adv, vox, vox-adv)" in (
        result.stderr
    )
    result = run(installed, script(installed, "fomm-run"), "--model", "vox")
    assert result.returncode == 2
    assert "no --source_image given, and no example/source.png in " in result.stderr
    inputs = ["--source_image", str(demo("tiny-vox") / "source.png")]
    inputs += ["--driving_video", str(demo("tiny-vox") / "driving.mp4")]
    result = run(installed, script(installed, "fomm-run"), "--model", "vox", *inputs)
    assert result.returncode == 2
    assert "no checkpoint for model 'vox': expected checkpoint/vox-cpk.pth.tar" in result.stderr


@pytest.mark.slow
def test_console_scripts_animate(installed, built):
    inputs = [
        *demo_flags(),
        "--relative",
        "--frames",
        "3",
    ]
    folder = built("tiny-vox")
    runs = {
        "fomm-run": ["--config", str(config_path("tiny-vox"))]
        + ["--checkpoint", str(checkpoint_path("tiny-vox"))],
        "fomm-test": ["--saved_models", str(folder / "saved_models")],
        "fomm-testlite": ["--tflite", str(folder / "tflite")],
    }
    for name, flags in runs.items():
        out = f"{name}/"
        result = run(
            installed,
            script(installed, name),
            "--model",
            "tiny-vox",
            *flags,
            *inputs,
            "--output",
            out,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.startswith("3 frames in ") and result.stdout.strip().endswith(out)
        assert read_frames(installed[1] / name).shape == (3, 256, 256, 3)
