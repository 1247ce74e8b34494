"""build.py's exports beyond parity (which test_networks checks for every target): builtin
ops only, servable signatures, dynamic batch, quantized models, atomic and clear failures.
Everything that builds is in the slow tier."""

import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import (
    IMAGE_TOL,
    ROOT,
    build,
    checkpoint_path,
    config_path,
    generator_inputs,
    images,
    reference,
    run_build,
    tiny_flags,
    tiny_model,
)

from modules.atomic import replacing
from modules.export.contract import MODULE_NAMES, QUANTIZATIONS, tflite_dir, tflite_path
from modules.export.tflite import tflite_ops


@pytest.mark.slow
def test_tflite_models_use_builtin_ops_only(built, case):
    for module in MODULE_NAMES:
        with open(tflite_path(built(case) / "tflite" / case, module), "rb") as f:
            ops = tflite_ops(f.read())
        assert ops and all(name.isupper() for name in ops), f"{module}: {ops}"
        assert not any(name.startswith("Flex") for name in ops)
        assert "VAR_HANDLE" not in ops and "READ_VARIABLE" not in ops


@pytest.mark.slow
def test_ops_report_lists_every_model(built, case):
    report = (built(case) / "tflite" / case / "OPS.md").read_text()
    for module in MODULE_NAMES:
        assert f"## {module}.tflite" in report
    assert "- input `image`: float32 [-1, 256, 256, 3]" in report
    assert "Signature `animate_encoded`:" in report
    assert "| GATHER |" in report


@pytest.mark.slow
def test_committed_ops_md_has_the_same_operators(built):
    """OPS.md at the top of the project documents the full-size vox models; the tiny vox
    model has the same architecture, so the same operators."""
    committed = (ROOT / "OPS.md").read_text()
    tiny = (built("tiny-vox") / "tflite" / "tiny-vox" / "OPS.md").read_text()

    def operators(report):
        return {
            line.split("|")[1].strip()
            for line in report.splitlines()
            if line.startswith("| ") and not line.startswith("| operator")
        }

    assert operators(committed) == operators(tiny)


@pytest.mark.slow
def test_saved_model_cli_shows_the_signatures(built):
    path = built("tiny-vox") / "saved_models" / "tiny-vox" / "generator"
    # Installed beside this Python by the tensorflow package, whether or not a venv is active.
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    out = subprocess.run(
        [cli, "show", "--dir", str(path), "--all"], capture_output=True, text=True, check=True
    ).stdout
    for name in (
        "serving_default",
        "encode_source",
        "animate_encoded",
        "source_image",
        "kp_driving_jacobian",
        "prediction",
        "occlusion_map",
    ):
        assert name in out
    assert "shape: (-1, 256, 256, 3)" in out


@pytest.mark.slow
def test_saved_generator_holds_its_graph_once(built):
    """The generator's serving_default calls encode_source and animate_encoded (the same
    prediction, bit for bit) instead of holding another copy of their graph, and the
    SavedModels hold the variables without the Keras layers around them: both shorten the
    load of test.py."""
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    root = built("tiny-vox") / "saved_models" / "tiny-vox"
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((root / "generator" / "saved_model.pb").read_bytes())
    graph = saved.meta_graphs[0]
    convolving = [
        f.signature.name
        for f in graph.graph_def.library.function
        if any(node.op == "Conv2D" for node in f.node_def)
    ]
    assert len(convolving) == 2, convolving  # encode_source's and animate_encoded's
    for module in ("kp_detector", "generator"):
        saved.ParseFromString((root / module / "saved_model.pb").read_bytes())
        nodes = saved.meta_graphs[0].object_graph_def.nodes
        assert sum(node.WhichOneof("kind") == "user_object" for node in nodes) <= 3

    signatures = tf.saved_model.load(str(root / "generator")).signatures
    ref = reference("tiny-vox")
    inputs = {k: tf.constant(v) for k, v in generator_inputs(ref, images("tiny-vox")[0]).items()}
    whole = signatures["serving_default"](**inputs)
    encoded = signatures["encode_source"](source_image=inputs.pop("source_image"))
    halves = signatures["animate_encoded"](**encoded, **inputs)
    assert set(whole) == set(halves)
    for name in whole:
        np.testing.assert_array_equal(whole[name].numpy(), halves[name].numpy())


def library_op_count(function, op_type):
    """Operations of ``op_type`` in a loaded SavedModel signature and the functions it calls."""
    library = function.graph.as_graph_def().library
    return sum(node.op == op_type for f in library.function for node in f.node_def)


@pytest.mark.slow
def test_savedmodels_for_a_gpu(tmp_path, capsys):
    """build.py --savedmodel_device gpu traces the SavedModels as a GPU machine would: without
    the Winograd bottleneck of the CPU's (16 depthwise transforms per convolution), with the
    space-to-depth final convolution; the same predictions as the original's. Loaded on a
    machine of the other kind, they say how to rebuild them for it."""
    from modules.app.sources import SavedModels
    from modules.layers import device_kind

    loaded, notes = {}, {}
    for kind in ("cpu", "gpu"):
        build("tiny-vox", tmp_path / kind, "--nolite", "--savedmodel_device", kind)
        capsys.readouterr()
        folder = tmp_path / kind / "saved_models" / "tiny-vox"
        loaded[kind] = SavedModels(folder, "python build.py --model tiny-vox")
        notes[kind] = capsys.readouterr().err
    here, other = device_kind(), {"cpu": "gpu", "gpu": "cpu"}[device_kind()]
    assert notes[here] == ""
    assert notes[other].startswith("note: ") and len(notes[other].splitlines()) == 1
    assert f"python build.py --model tiny-vox --savedmodel_device {here}" in notes[other]
    cpu, gpu = loaded["cpu"], loaded["gpu"]
    generators = (cpu.loaded["generator"], gpu.loaded["generator"])
    cpu_fn, gpu_fn = (g.signatures["animate_encoded"] for g in generators)
    assert library_op_count(cpu_fn, "DepthwiseConv2dNative") > 0
    assert library_op_count(gpu_fn, "DepthwiseConv2dNative") == 0
    assert library_op_count(gpu_fn, "SpaceToDepth") >= 1
    ref = reference("tiny-vox")
    source, _ = images("tiny-vox")
    out = gpu.generator(**generator_inputs(ref, source))
    assert np.abs(out["prediction"] - ref["prediction_rel_adapt"]).max() <= IMAGE_TOL


@pytest.mark.parametrize(
    "record",
    [
        b"",
        b"{",
        b"[1]",
        b'{"fast_convolutions": 5}',
        b'{"fast_convolutions": ["x"]}',
        b"\xff" * 9000,
    ],
)
def test_damaged_forms_record_gives_no_note(tmp_path, record):
    """The SavedModel's record of its convolutions only ever adds a note; a damaged one adds
    none and breaks nothing."""
    from modules.app.sources import device_note

    (tmp_path / "assets.extra").mkdir()
    (tmp_path / "assets.extra" / "fomm.json").write_bytes(record)
    assert device_note(str(tmp_path), "python build.py --model vox") is None


def test_forms_record_that_is_a_pipe_gives_no_note(tmp_path):
    from modules.app.sources import device_note

    (tmp_path / "assets.extra").mkdir()
    os.mkfifo(tmp_path / "assets.extra" / "fomm.json")
    assert device_note(str(tmp_path), "python build.py --model vox") is None


@pytest.mark.slow
@pytest.mark.parametrize("target", ["savedmodel", "tflite"])
def test_same_files_serve_batch_8(target_model, target):
    """One export, several batch sizes, including one larger than any used before."""
    model = target_model("tiny-vox", target)
    source, driving = images("tiny-vox")
    batch = np.concatenate([driving, driving, driving[:2]])
    value = model.kp_detector(image=batch)["value"]
    np.testing.assert_allclose(value[3:6], model.kp_detector(image=driving)["value"], atol=1e-5)
    ref = reference("tiny-vox")
    out = model.generator(
        source_image=source,
        kp_source_value=ref["kp_source_value"],
        kp_source_jacobian=ref["kp_source_jacobian"],
        kp_driving_value=np.tile(ref["kp_norm_value_abs"], (3, 1, 1))[:8],
        kp_driving_jacobian=np.tile(ref["kp_norm_jacobian_abs"], (3, 1, 1, 1))[:8],
    )
    assert out["prediction"].shape == (8, 256, 256, 3)
    assert np.abs(out["prediction"][6:8] - ref["prediction_abs"][:2]).max() <= IMAGE_TOL


@pytest.mark.slow
@pytest.mark.parametrize("quantize", QUANTIZATIONS)
def test_quantized_tflite_runs_and_reports_psnr(tmp_path, quantize):
    from modules.app.sources import LiteModels

    build("tiny-vox", tmp_path, "--quantize", quantize)
    folder = tflite_dir(tmp_path / "tflite", "tiny-vox", quantize)
    assert not (tmp_path / "saved_models").exists()
    with open(tflite_path(folder, "generator"), "rb") as f:
        flatbuffer = f.read()
    assert all(name.isupper() for name in tflite_ops(flatbuffer))
    if quantize == "dynamic":
        int8, float32 = weight_names(flatbuffer)
        assert int8 and all(re.search(r"(^|/)(bottleneck|up_blocks)\.", n) for n in int8), int8
        # the first bottleneck convolution stays float32 (modules/export/quantize.py)
        assert not any("bottleneck.r0.conv1" in n for n in int8), int8
        assert any("bottleneck.r0.conv1" in n for n in float32)
        assert any("bottleneck.r0.conv2" in n for n in int8)
        assert any(n.startswith("dense_motion_network") for n in float32)
        assert any(n.startswith(("first", "final")) for n in float32)
    model = LiteModels(folder, "build.py")
    ref = reference("tiny-vox")
    source, _ = images("tiny-vox")
    out = model.generator(**generator_inputs(ref, source))
    mse = np.mean((out["prediction"] - ref["prediction_rel_adapt"]) ** 2)
    psnr = 10 * np.log10(1 / mse)
    print(f"\ntiny-vox {quantize} TF Lite prediction PSNR vs float32 reference: {psnr:.1f} dB")
    assert np.isfinite(out["prediction"]).all() and psnr > 20
    # keypoints are not quantized
    kp = model.kp_detector(image=source)["value"]
    assert np.abs(kp - ref["kp_source_value"]).max() <= 5e-5


def weight_names(flatbuffer):
    """Names of the int8 and float32 constant tensors of a TF Lite model."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    names = {schema.TensorType.INT8: set(), schema.TensorType.FLOAT32: set()}
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            data = model.buffers[tensor.buffer].data if tensor.buffer else None
            if data is not None and len(data) and tensor.type in names:
                names[tensor.type].add(tensor.name.decode())
    return names[schema.TensorType.INT8], names[schema.TensorType.FLOAT32]


@pytest.mark.slow
def test_failed_build_keeps_the_previous_models(tmp_path):
    build("tiny-vox", tmp_path, "--module", "kp_detector")
    saved = tmp_path / "saved_models" / "tiny-vox" / "kp_detector"
    lite = pathlib.Path(tflite_path(tmp_path / "tflite" / "tiny-vox", "kp_detector"))
    before = sorted(p.name for p in saved.iterdir()), lite.read_bytes()
    result = run_build(
        *tiny_flags("tiny-vox", "tiny-mgif"),
        "--saved_models",
        str(tmp_path / "saved_models"),
        "--tflite",
        str(tmp_path / "tflite"),
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "jacobian.weight has shape [4, 11, 7, 7]" in result.stderr
    assert (sorted(p.name for p in saved.iterdir()), lite.read_bytes()) == before
    assert sorted(os.listdir(saved.parent)) == ["kp_detector", "manifest.json"]


def test_interrupted_replacement_leaves_target_and_no_temporary(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "keep").write_text("good")
    with pytest.raises(KeyboardInterrupt):
        with replacing(target) as tmp:
            (tmp_path / os.path.basename(tmp) / "half").write_text("partial")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["model"] and os.listdir(target) == ["keep"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "nonexistent"], "no config for model 'nonexistent'"),
        (["--model", "vox", "--checkpoint", "missing.pth.tar"], "checkpoint not found"),
        (["--all", "--config", "config/vox-256.yaml"], "--all builds every config"),
        (["--quantize", "dynamic", "--nolite"], "does not go with --nolite"),
        (["--quantize", "int4"], "argument --quantize: invalid choice"),
        (["--onnx", "--precision", "bfloat16"], "does not go with --onnx or --tfjs"),
        (["--savedmodel_device", "gpu", "--quantize", "dynamic"], "is for SavedModels"),
    ],
)
def test_bad_arguments_give_one_line(args, message):
    result = run_build(*args)
    assert result.returncode == 2
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_checkpoint_says_where_to_put_it(tmp_path):
    project = project_copy(tmp_path)
    result = subprocess.run(
        [sys.executable, "build.py", "--model", "vox"], cwd=project, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "checkpoint/vox-cpk.pth.tar or checkpoint/vox.pth.tar" in result.stderr
    result = subprocess.run(
        [sys.executable, "build.py", "--all"], cwd=project, capture_output=True, text=True
    )
    assert result.returncode == 2 and "found no checkpoint" in result.stderr


def project_copy(tmp_path):
    """The scripts, modules and configs in an empty folder: its checkpoint/ is ours to fill."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(ROOT / "modules", tmp_path / "modules")
    shutil.copy(ROOT / "build.py", tmp_path)
    (tmp_path / "checkpoint").mkdir()
    return tmp_path


def test_tfjs_without_the_converter_says_how_to_install_it(tmp_path):
    project = project_copy(tmp_path)  # no .venv-tfjs/ there
    result = subprocess.run(
        [sys.executable, "build.py", "--model", "vox", "--tfjs"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "tensorflowjs converter" in result.stderr and "run bash install.sh" in result.stderr
    assert not (project / "tfjs").exists() and not (project / "saved_models").exists()


@pytest.mark.slow
def test_all_builds_every_config_with_a_checkpoint(tmp_path):
    """--all finds NAME-cpk.pth.tar and NAME.pth.tar (the published fashion checkpoint's name)."""
    project = project_copy(tmp_path)
    for case, checkpoint in (
        ("tiny-vox", "tiny-vox-cpk.pth.tar"),
        ("tiny-mgif", "tiny-mgif.pth.tar"),
    ):
        shutil.copy(config_path(case), project / "config" / f"{case}-256.yaml")
        shutil.copy(checkpoint_path(case), project / "checkpoint" / checkpoint)
    result = subprocess.run(
        [sys.executable, "build.py", "--all", "--nolite", "--module", "kp_detector"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(project / "saved_models")) == ["tiny-mgif", "tiny-vox"]
    assert "tiny-mgif.pth.tar" in result.stdout and "done in" in result.stdout


@pytest.mark.slow
def test_loadwithtorch_builds_the_same_keypoints(tmp_path):
    pytest.importorskip("torch")
    import tensorflow as tf

    build("tiny-mgif", tmp_path, "--loadwithtorch", "--nolite", "--module", "kp_detector")
    assert not (tmp_path / "tflite").exists()
    loaded = tf.saved_model.load(str(tmp_path / "saved_models" / "tiny-mgif" / "kp_detector"))
    source, _ = images("tiny-mgif")
    out = loaded.signatures["serving_default"](image=tf.constant(source))
    np.testing.assert_allclose(
        out["value"].numpy(), tiny_model("tiny-mgif").kp_detector(image=source)["value"], atol=1e-6
    )
