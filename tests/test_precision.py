"""--precision bfloat16 (run.py, test.py, build.py): the generator's per-frame convolutions
in bfloat16, everything else float32; opt-in, float32 stays the exact port."""

import numpy as np
import pytest
from helpers import (
    KP_TOL,
    build,
    checkpoint_path,
    config_path,
    generator_inputs,
    images,
    reference,
    run_build,
    run_script,
)


def psnr(got, want):
    return 10 * np.log10(1 / np.mean((np.asarray(got, np.float64) - want) ** 2))


def predict(model):
    ref = reference("tiny-vox")
    source, _ = images("tiny-vox")
    return model.generator(**generator_inputs(ref, source))["prediction"]


@pytest.fixture(scope="module")
def bf16_model():
    from modules import load_model

    return load_model(config_path("tiny-vox"), checkpoint_path("tiny-vox"), precision="bfloat16")


def test_bfloat16_only_in_the_per_frame_convolutions(bf16_model):
    import tensorflow as tf

    function = bf16_model.signatures.animate_encoded.get_concrete_function()
    convs = [op for op in function.graph.get_operations() if op.type == "Conv2D"]
    bf16 = {op.name.split("/")[0] for op in convs if op.get_attr("T") == tf.bfloat16}
    f32 = {op.name.split("/")[0] for op in convs if op.get_attr("T") == tf.float32}
    assert bf16 and all(n.startswith(("bottleneck", "up_blocks")) for n in bf16), bf16
    assert any(n.startswith("dense_motion_network") for n in f32)
    assert any(n.startswith("final") for n in f32)
    # the keypoint detector is untouched
    ref = reference("tiny-vox")
    source, _ = images("tiny-vox")
    kp = bf16_model.kp_detector(image=source)["value"]
    assert np.abs(kp - ref["kp_source_value"]).max() <= KP_TOL


def test_bfloat16_keras_and_saved_model_quality(bf16_model, tmp_path):
    from modules.app.sources import SavedModels

    ref = reference("tiny-vox")["prediction_rel_adapt"]
    keras = predict(bf16_model)
    print(f"\ntiny-vox bfloat16 prediction PSNR vs the original: {psnr(keras, ref):.1f} dB")
    assert psnr(keras, ref) >= 40
    build("tiny-vox", tmp_path, "--precision", "bfloat16")
    assert sorted(p.name for p in (tmp_path / "saved_models").iterdir()) == ["tiny-vox-bfloat16"]
    assert not (tmp_path / "tflite").exists()
    saved = SavedModels(tmp_path / "saved_models" / "tiny-vox-bfloat16", "build.py")
    np.testing.assert_allclose(predict(saved), keras, atol=1e-5)


def test_bad_precision_use(tmp_path):
    result = run_build("--model", "tiny-vox", "--precision", "bfloat16", "--quantize", "dynamic")
    assert result.returncode == 2 and "does not go with --quantize" in result.stderr
    result = run_script(
        "test.py", "--model", "tiny-vox", "--saved_models", str(tmp_path), "--precision", "bfloat16"
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    # no config/tiny-vox-256.yaml: the command names no model that cannot be built
    assert "python build.py --model NAME --precision bfloat16" in result.stderr
    result = run_script(
        "test.py", "--model", "vox", "--saved_models", str(tmp_path), "--precision", "bfloat16"
    )
    assert "python build.py --model vox --precision bfloat16" in result.stderr
