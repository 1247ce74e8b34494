"""Mobile-ready TF Lite builds (build.py --static_batch, --prediction_only, --hardcode) and
the GPU delegate report: static shapes, one output, fixed flags, parity with the original's
fixtures at the usual tolerances, and testlite.py running them end to end."""

import pathlib

import numpy as np
import pytest
from helpers import (
    IMAGE_TOL,
    KP_TOL,
    assert_close,
    build,
    demo,
    demo_flags,
    generator_inputs,
    images,
    read_frames,
    reference,
    reference_process_kp_inputs,
    run_build,
    run_in_process,
    run_script,
)

from modules.export.contract import HARDCODED_FLAGS_METADATA, MODULE_NAMES, tflite_path
from modules.export.gpu import gpu_problems
from modules.export.metadata import read_metadata

STATIC = 2  # the fixtures have 3 driving frames: one full batch and one padded


@pytest.fixture(scope="module")
def mobile(tmp_path_factory):
    root = tmp_path_factory.mktemp("mobile")
    build(
        "tiny-vox",
        root,
        "--static_batch",
        str(STATIC),
        "--prediction_only",
        "--hardcode",
        "1,1",
    )
    return root


def lite(folder):
    from modules.app.sources import LiteModels

    return LiteModels(folder, "build.py")


def read(folder, module):
    return pathlib.Path(tflite_path(folder, module)).read_bytes()


@pytest.mark.slow
def test_every_input_static_one_output_no_flags(mobile):
    from ai_edge_litert.interpreter import Interpreter

    folder = mobile / "tflite" / "tiny-vox"
    assert not (mobile / "saved_models").exists()
    for module in MODULE_NAMES:
        interpreter = Interpreter(model_content=read(folder, module))
        for key in interpreter.get_signature_list():
            runner = interpreter.get_signature_runner(key)
            inputs = runner.get_input_details()
            for name, d in inputs.items():
                assert (d["shape_signature"] > 0).all(), f"{module} {key} {name}"
            assert not {"use_relative_movement", "adapt_movement_scale"} & set(inputs)
            if module == "generator" and key != "encode_source":
                assert list(runner.get_output_details()) == ["prediction"], key
                assert inputs["kp_driving_value"]["shape_signature"][0] == STATIC
                assert inputs["kp_source_value"]["shape_signature"][0] == 1
    flags = read_metadata(read(folder, "process_kp"), HARDCODED_FLAGS_METADATA)
    assert flags == {
        "use_relative_movement": 1.0,
        "use_relative_jacobian": 1.0,
        "adapt_movement_scale": 1.0,
    }
    report = (folder / "OPS.md").read_text()
    assert "Flags fixed at build time" in report and "[2, 256, 256, 3]" in report


@pytest.mark.slow
def test_static_build_matches_the_original(mobile):
    """Padded last batch included: 3 driving frames through a batch of 2."""
    model = lite(mobile / "tflite" / "tiny-vox")
    ref = reference("tiny-vox")
    source, driving = images("tiny-vox")
    kp = model.kp_detector(image=driving)
    assert_close("kp_driving_value", kp["value"], ref["kp_driving_value"], KP_TOL)
    assert_close("kp_driving_jacobian", kp["jacobian"], ref["kp_driving_jacobian"], KP_TOL)
    kp_source = model.kp_detector(image=source)
    assert_close("kp_source_value", kp_source["value"], ref["kp_source_value"], KP_TOL)
    norm = model.process_kp(**reference_process_kp_inputs(ref))
    assert_close("value", norm["value"], ref["kp_norm_value_rel_adapt"], KP_TOL)
    assert_close("jacobian", norm["jacobian"], ref["kp_norm_jacobian_rel_adapt"], KP_TOL)
    keypoints = {
        "kp_source_value": ref["kp_source_value"],
        "kp_source_jacobian": ref["kp_source_jacobian"],
        "kp_driving_value": ref["kp_norm_value_rel_adapt"],
        "kp_driving_jacobian": ref["kp_norm_jacobian_rel_adapt"],
    }
    out = model.generator(source_image=source, **keypoints)
    assert list(out) == ["prediction"]
    assert_close("prediction", out["prediction"], ref["prediction_rel_adapt"], IMAGE_TOL)
    encoded = model.encode_source(source_image=source)
    out = model.animate_encoded(**encoded, **keypoints)
    assert_close("prediction", out["prediction"], ref["prediction_rel_adapt"], IMAGE_TOL)


@pytest.mark.slow
def test_hardcoded_flags_must_match(mobile):
    model = lite(mobile / "tflite" / "tiny-vox")
    ref = reference("tiny-vox")
    from modules.errors import UsageError

    with pytest.raises(UsageError, match=r"--hardcode 1,1: run with --relative --adapt_scale"):
        model.process_kp(**reference_process_kp_inputs(ref, 0.0, 0.0))


@pytest.mark.slow
def test_testlite_runs_a_mobile_build_like_demo_py(mobile, tmp_path):
    """8 frames in batches of 3 through a static batch of 2: split, then padded."""
    expected = np.load(demo("tiny-vox") / "expected.npz")["frames_rel_adapt"]
    args = [
        "--model",
        "tiny-vox",
        "--tflite",
        str(mobile / "tflite"),
        *demo_flags(),
        "--batch_size",
        "3",
    ]
    run_in_process("testlite.py", [*args, "--output", f"{tmp_path}/", "--relative", "--adapt"])
    frames = read_frames(tmp_path)
    assert frames.shape == expected.shape
    assert np.abs(frames.astype(int) - expected).max() <= 1
    result = run_script("testlite.py", *args, "--output", str(tmp_path / "abs.mp4"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "built with --hardcode 1,1" in result.stderr
    assert not (tmp_path / "abs.mp4").exists()


@pytest.mark.slow
def test_static_dynamic_range_build(tmp_path):
    build("tiny-vox", tmp_path, "--static_batch", "1", "--prediction_only", "--quantize", "dynamic")
    folder = tmp_path / "tflite" / "tiny-vox-dynamic"
    model = lite(folder)
    ref = reference("tiny-vox")
    source, _ = images("tiny-vox")
    out = model.generator(**generator_inputs(ref, source))
    assert list(out) == ["prediction"] and out["prediction"].shape == (3, 256, 256, 3)
    psnr = 10 * np.log10(1 / np.mean((out["prediction"] - ref["prediction_rel_adapt"]) ** 2))
    assert psnr > 20
    # the process_kp of this build keeps its flag inputs
    model.process_kp(**reference_process_kp_inputs(ref, 0.0, 0.0))


@pytest.mark.slow
def test_gpu_report(mobile, built):
    """The default build's grid_sample gathers with 2-D indices, which the GPU delegate
    refuses; a static build gathers with 1-D indices."""
    dynamic = gpu_problems(read(built("tiny-vox") / "tflite" / "tiny-vox", "generator"))
    static = gpu_problems(read(mobile / "tflite" / "tiny-vox", "generator"))
    assert ("GATHER", "indices of rank > 1 (only 1-D indices)") in dynamic
    assert ("(inputs)", "dynamic shape; the delegate needs static shapes") in dynamic
    assert not any(op in ("GATHER", "(inputs)") for op, _ in static)
    report = (mobile / "tflite" / "tiny-vox" / "OPS.md").read_text()
    assert "GPU delegate, LiteRT analyzer:" in report


def test_gpu_rules_catch_unsupported_ops():
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 3]), tf.TensorSpec([1, 5, 2], tf.int32)])
    def f(x, i):
        return {"a": tf.gather_nd(x, i), "b": tf.gather(x, i[..., 0], batch_dims=1)}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    problems = gpu_problems(converter.convert())
    assert ("GATHER_ND", "no GPU kernel") in problems
    assert ("GATHER", "indices of rank > 1 (only 1-D indices)") in problems


@pytest.mark.parametrize(
    "args, message",
    [
        (["--static_batch", "0"], "--static_batch must be at least 1, got 0"),
        (["--hardcode", "2,1"], "--hardcode takes RELATIVE,ADAPT, each 0 or 1"),
        (["--hardcode", "1"], "--hardcode takes RELATIVE,ADAPT, each 0 or 1"),
        (["--prediction_only", "--nolite"], "they do not go with --nolite"),
    ],
)
def test_bad_mobile_flags(args, message):
    result = run_build("--model", "tiny-vox", *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr
