"""The scripts' one-line errors where the cause is not the user's input: an optional package
that is not installed, a model name that was never built, a checkpoint of another config.

Each test runs the real script (or library call) in a child process; a missing package is
made so by an import hook in that child that refuses it, as an environment without it would.
"""

import subprocess
import sys

import imageio.v2 as imageio
import pytest
from face_scenes import astronaut_scene
from helpers import ROOT, checkpoint_path, config_path, demo, demo_flags, run_script

# Runs ``argv[2:]`` as a script (or ``-c CODE``) with the packages named in argv[1] refused.
BLOCKED_RUN = """
import runpy, sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

BLOCKED = set(sys.argv[1].split(","))
sys.meta_path.insert(0, Refuse())
if sys.argv[2] == "-c":
    sys.argv = ["-c", *sys.argv[4:]]
    sys.path.insert(0, ".")
    exec(compile(CODE, "<test>", "exec"))
else:
    sys.argv = sys.argv[2:]
    sys.path.insert(0, sys.argv[0].rpartition("/")[0])
    runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_without(blocked, *args, cwd=ROOT):
    """A child process running ``args`` (a script and its flags, or '-c', CODE) without the
    packages ``blocked``."""
    code = BLOCKED_RUN
    if args[0] == "-c":
        code = f"CODE = {args[1]!r}\n" + code
    return subprocess.run(
        [sys.executable, "-c", code, ",".join(blocked), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def assert_one_line(result, expected):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == f"error: {expected}", result.stderr
    assert "Traceback" not in result.stderr


def tiny_demo_flags(tmp_path):
    return [
        "--model",
        "tiny-vox",
        "--config",
        str(config_path("tiny-vox")),
        "--checkpoint",
        str(checkpoint_path("tiny-vox")),
        *demo_flags(),
        "--output",
        str(tmp_path / "out.mp4"),
    ]


FACES = "python -m pip install 'fomm-tf[faces]' (in a checkout: bash install.sh)"
ONNX = "python -m pip install 'fomm-tf[onnx]' (in a checkout: bash install.sh)"


def test_crop_without_mtcnn(tmp_path):
    result = run_without(["mtcnn"], str(ROOT / "run.py"), *tiny_demo_flags(tmp_path), "--crop")
    assert_one_line(
        result, f"--crop needs the face detector mtcnn, which is not installed: {FACES}"
    )


def test_loadwithtorch_without_torch(tmp_path):
    result = run_without(
        ["torch"], str(ROOT / "run.py"), *tiny_demo_flags(tmp_path), "--loadwithtorch"
    )
    assert_one_line(
        result,
        "--loadwithtorch (leave it out to use the built-in reader) needs torch, which is not "
        "installed: python -m pip install torch",
    )


# Library calls as the scripts make them (main_guard: the scripts' one-line errors).
GUARDED = """
from modules.app.cli import main_guard

def main(argv=None):
{body}

main_guard(main)()
"""


def guarded(body):
    return GUARDED.format(body="\n".join("    " + line for line in body.splitlines()))


@pytest.mark.parametrize(
    "blocked, body, expected",
    [
        (
            "onnxruntime",
            "from modules.app.sources import OnnxModels\nOnnxModels('onnx/x', 'hint')",
            f"running ONNX models needs onnxruntime, which is not installed: {ONNX}",
        ),
        (
            "tf2onnx",
            "from modules.export.onnx import convert_onnx\nconvert_onnx(None, 'generator')",
            f"ONNX export (build.py --onnx, --web) needs tf2onnx, which is not installed: {ONNX}",
        ),
        (
            "onnx",
            "from modules.export.web import io_names\nio_names(b'')",
            f"the web page's models (build.py --web) needs onnx, which is not installed: {ONNX}",
        ),
        (
            "ray",
            "from modules.app.distributed import start_ray\nstart_ray('local', 1)",
            "--ray needs Ray, which is not installed: "
            "python -m pip install 'fomm-tf[ray]' (in a checkout: bash install.sh)",
        ),
    ],
)
def test_missing_extra(blocked, body, expected):
    assert_one_line(run_without([blocked], "-c", guarded(body)), expected)


def test_extra_missing_a_dependency(tmp_path, monkeypatch):
    """A package that is there but cannot import one of its own dependencies: the line says
    so, and the same install command fixes it."""
    from modules import extras
    from modules.errors import UsageError

    (tmp_path / "half_installed.py").write_text("import not_installed_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UsageError) as error:
        extras.require("half_installed", "faces", "--crop")
    assert str(error.value) == (
        "--crop needs half_installed, which cannot be imported (No module named "
        f"'not_installed_dependency'): {FACES}"
    )


def test_crop_with_mtcnn_checks_nothing_more():
    """The early check finds an installed mtcnn without importing it (nor TensorFlow)."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from modules.app.faces import check_detector; check_detector('--crop');"
            "print('tensorflow' in sys.modules, 'mtcnn' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.stdout.split() == ["False", "False"], result.stderr


def fake_builds(root, folders, files):
    """Folders as build.py leaves them, each holding one model entry (enough for a list)."""
    for folder in folders:
        (root / folder / "generator").mkdir(parents=True)
    for folder in files:
        (root / folder).mkdir(parents=True)
        (root / folder / "generator.tflite").write_bytes(b"")
    (root / "notes").mkdir()  # no model inside: not listed


def test_misspelled_model_lists_the_saved_models(tmp_path):
    fake_builds(tmp_path, ["vox", "tiny-vox", "vox-bfloat16"], [])
    result = run_script("test.py", "--model", "voxx", "--saved_models", str(tmp_path))
    assert_one_line(
        result,
        f"no SavedModels for model 'voxx' in {tmp_path} (built: tiny-vox, vox, "
        "vox --precision bfloat16); build them with: python build.py --model NAME",
    )


def test_misspelled_model_lists_the_tflite_models(tmp_path):
    fake_builds(tmp_path, [], ["vox", "vox-dynamic", "mgif-float16"])
    flags = ["--model", "voxx", "--tflite", str(tmp_path), "--quantize", "dynamic"]
    assert_one_line(
        run_script("testlite.py", *flags),
        f"no TF Lite models for model 'voxx' in {tmp_path} (built: mgif --quantize float16, "
        "vox, vox --quantize dynamic); build them with: python build.py --model NAME "
        "--quantize dynamic",
    )


def test_model_with_a_config_gets_its_build_command(tmp_path):
    fake_builds(tmp_path, ["vox"], [])
    assert_one_line(
        run_script("test.py", "--model", "mgif", "--saved_models", str(tmp_path)),
        f"no SavedModels for model 'mgif' in {tmp_path} (built: vox); "
        "build them with: python build.py --model mgif",
    )


def test_checkpoint_of_another_size_is_summarised(tmp_path):
    """vox-256.yaml with the tiny-vox checkpoint: 63 kp_detector tensors differ; the line
    says how, lists a few, and stays short."""
    checkpoint = checkpoint_path("tiny-vox")
    result = run_script(
        "run.py",
        *["--model", "vox", "--checkpoint", str(checkpoint), "--frames", "1"],
        *["--output", str(tmp_path / "out.mp4")],
    )
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(
        f"error: checkpoint {checkpoint} (kp_detector) does not match the config: it has "
        "16-channel layers where the config asks for 64; predictor.encoder.down_blocks.0."
        "conv.weight has shape [16, 3, 3, 3] in the checkpoint but the config gives "
        "[64, 3, 3, 3]; "
    ), line
    assert line.endswith(" more") and len(line) < 600, line


def test_checkpoint_with_other_jacobians_is_summarised(tmp_path):
    result = run_script(
        "run.py",
        *["--model", "tiny-vox", "--config", str(config_path("tiny-vox"))],
        *["--checkpoint", str(checkpoint_path("tiny-mgif")), "--frames", "1"],
        *["--output", str(tmp_path / "out.mp4")],
    )
    assert "does not match the config: it has 1 jacobian map where the config asks for 10 " in (
        result.stderr
    ), result.stderr


def test_mismatch_summaries():
    from modules.convert.mismatch import describe

    head = {"kp.weight": ((15, 35, 7, 7), (10, 35, 7, 7))}
    assert describe("kp", head) == (
        "kp does not match the config: it has 15 keypoints where the config asks for 10 "
        "(num_kp); kp.weight has shape [15, 35, 7, 7] in the checkpoint but the config "
        "gives [10, 35, 7, 7]"
    )
    missing = [f"occlusion.{i}.weight" for i in range(12)]
    message = describe("g", {}, missing, ["extra.weight"])
    assert message.startswith(
        "g does not match the config: it lacks 12 tensors of the config's model, and it has "
        "1 tensor the config's model has not; missing keys: occlusion.0.weight, "
    )
    assert message.endswith("occlusion.9.weight; ... and 3 more"), message


def test_crop_shows_the_face_search(tmp_path):
    """--crop looks for faces for seconds before the animation's own bar: a bar of its own,
    over the source image and every driving frame read."""
    scene, _ = astronaut_scene(0.6, (250, 30), shape=(360, 640))
    imageio.imwrite(tmp_path / "s.png", scene)
    flags = tiny_demo_flags(tmp_path)
    flags[flags.index("--source_image") + 1] = str(tmp_path / "s.png")
    result = run_script("run.py", *flags, "--crop", "--frames", "3")
    assert result.returncode == 0, result.stderr
    bar = [line for line in result.stderr.splitlines() if line.startswith("faces: ")]
    assert bar and "4/4" in bar[-1], result.stderr


def test_config_means_the_models_config_only():
    """run.py's --config builds the models; test.py's and testlite.py's models come built,
    so their config for the dataset modes is --mode_config (modes.py reads args.config)."""
    from modules.app import animate, backends

    keras = animate.parser("run.py", "", backends.Keras())
    assert keras.parse_args(["--config", "c.yaml"]).config == "c.yaml"
    for backend in (backends.SavedModel(), backends.Lite()):
        parser = animate.parser(backend.name, "", backend)
        assert parser.parse_args(["--mode_config", "c.yaml"]).config == "c.yaml"
        assert parser.parse_args([]).config is None
        with pytest.raises(SystemExit):
            parser.parse_args(["--config", "c.yaml"])


def test_build_checks_the_onnx_extra_before_building(tmp_path):
    """With TensorFlow refused too: the missing tf2onnx is found before anything loads."""
    flags = ["--model", "tiny-vox", "--config", str(config_path("tiny-vox"))]
    flags += ["--checkpoint", str(checkpoint_path("tiny-vox")), "--onnx", "--nolite"]
    flags += ["--saved_models", str(tmp_path / "sm"), "--onnx_dir", str(tmp_path / "onnx")]
    result = run_without(["tf2onnx", "tensorflow"], str(ROOT / "build.py"), *flags)
    assert_one_line(
        result,
        "ONNX export (build.py --onnx, --web) needs tf2onnx, which is not installed: "
        "python -m pip install 'fomm-tf[onnx]' (in a checkout: bash install.sh)",
    )
    assert not (tmp_path / "sm").exists()


def test_crop_py_checks_mtcnn_before_tensorflow(tmp_path):
    video = str(demo("tiny-vox") / "driving.mp4")
    args = ["--input", video, "--output", str(tmp_path / "clips")]
    result = run_without(["mtcnn", "tensorflow"], str(ROOT / "crop.py"), *args)
    assert_one_line(
        result,
        "finding faces (crop.py) needs the face detector mtcnn, which is not installed: "
        "python -m pip install 'fomm-tf[faces]' (in a checkout: bash install.sh)",
    )


def test_config_given_to_test_py_says_what_to_give():
    result = run_script("test.py", "--config", "x.yaml")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: unrecognized arguments: --config x.yaml; the models come built (build.py "
        "takes --config); the dataset modes' config is --mode_config (see test.py --help)"
    )
