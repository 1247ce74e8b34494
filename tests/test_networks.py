"""The models against the original's outputs (tests/fixtures/*/reference.npz): the Keras port,
its SavedModels reloaded from disk, its TF Lite models on LiteRT (testlite.py's runner) and its
ONNX models on onnxruntime."""

import numpy as np
import pytest
from helpers import (
    IMAGE_TOL,
    KP_TOL,
    MODES,
    assert_close,
    images,
    reference,
    tiny_model,
)

from modules.layers import GPU_FORMS, WEB_LITERT_FORMS, device_kind


def kp_inputs(ref, mode, frames):
    inputs = {
        "kp_source_value": ref["kp_source_value"],
        "kp_source_jacobian": ref["kp_source_jacobian"],
        "kp_driving_value": ref[f"kp_norm_value_{mode}"][frames],
        "kp_driving_jacobian": ref[f"kp_norm_jacobian_{mode}"][frames],
    }
    return inputs


def batches(n):
    """Every frame alone (batch 1), then all frames at once (batch n)."""
    return [slice(i, i + 1) for i in range(n)] + [slice(0, n)]


def test_kp_detector(target_model, case, target):
    ref = reference(case)
    model = target_model(case, target)
    source, driving = images(case)
    out = model.kp_detector(image=source)
    assert_close("source value", out["value"], ref["kp_source_value"], KP_TOL)
    assert_close("source jacobian", out["jacobian"], ref["kp_source_jacobian"], KP_TOL)
    for frames in batches(len(driving)):
        out = model.kp_detector(image=driving[frames])
        assert_close(
            f"driving value {frames}", out["value"], ref["kp_driving_value"][frames], KP_TOL
        )
        assert_close(
            f"driving jacobian {frames}",
            out["jacobian"],
            ref["kp_driving_jacobian"][frames],
            KP_TOL,
        )


@pytest.mark.parametrize("mode", MODES)
def test_process_kp(target_model, case, target, mode):
    ref = reference(case)
    model = target_model(case, target)
    relative, relative_jacobian, adapt = MODES[mode]
    for frames in batches(3):
        out = model.process_kp(
            kp_source_value=ref["kp_source_value"],
            kp_source_jacobian=ref["kp_source_jacobian"],
            kp_driving_value=ref["kp_driving_value"][frames],
            kp_driving_jacobian=ref["kp_driving_jacobian"][frames],
            kp_initial_value=ref["kp_driving_value"][:1],
            kp_initial_jacobian=ref["kp_driving_jacobian"][:1],
            use_relative_movement=relative,
            use_relative_jacobian=relative_jacobian,
            adapt_movement_scale=adapt,
        )
        assert_close(f"value {frames}", out["value"], ref[f"kp_norm_value_{mode}"][frames], KP_TOL)
        assert_close(
            f"jacobian {frames}", out["jacobian"], ref[f"kp_norm_jacobian_{mode}"][frames], KP_TOL
        )


@pytest.mark.parametrize("mode", ["abs", "rel_adapt"])
def test_generator(target_model, case, target, mode):
    ref = reference(case)
    model = target_model(case, target)
    source, _ = images(case)
    for frames in batches(3):
        n = len(range(3)[frames])
        out = model.generator(
            source_image=np.repeat(source, n, axis=0), **kp_inputs(ref, mode, frames)
        )
        assert_close(
            f"prediction {frames}", out["prediction"], ref[f"prediction_{mode}"][frames], IMAGE_TOL
        )
        if mode == "rel_adapt":
            assert_close(
                f"mask {frames}",
                out["mask"].transpose(0, 3, 1, 2),
                ref["mask_rel_adapt_nchw"][frames],
                IMAGE_TOL,
            )
            assert_close(
                f"occlusion map {frames}",
                out["occlusion_map"].transpose(0, 3, 1, 2),
                ref["occlusion_map_rel_adapt_nchw"][frames],
                IMAGE_TOL,
            )
            assert_close(
                f"deformation {frames}",
                out["deformation"],
                ref["deformation_rel_adapt"][frames],
                IMAGE_TOL,
            )


def test_sparse_deformed(case):
    """The dense motion network's sparse deformed source images (Eq. 7 of the paper)."""
    ref = reference(case)
    model = tiny_model(case)  # Keras only: the exports do not output these
    source, _ = images(case)
    kp = kp_inputs(ref, "rel_adapt", slice(0, 3))
    out = model.keras_generator(
        source,
        kp_driving={"value": kp["kp_driving_value"], "jacobian": kp["kp_driving_jacobian"]},
        kp_source={"value": kp["kp_source_value"], "jacobian": kp["kp_source_jacobian"]},
    )
    # [B, h, w, K+1, C] -> the original's [B, K+1, C, h, w]
    assert_close(
        "sparse deformed",
        out["sparse_deformed"].numpy().transpose(0, 3, 4, 1, 2),
        ref["sparse_deformed_rel_adapt"],
        IMAGE_TOL,
    )


def op_count(function, op_type):
    graph = function.get_concrete_function().graph
    return sum(op.type == op_type for op in graph.get_operations())


def test_each_target_traces_its_own_fast_convolutions(case):
    """On a CPU, run.py and the SavedModels trace the sub-pixel up blocks and space-to-depth final
    convolution (DepthToSpace, SpaceToDepth) and the Winograd bottleneck (16 depthwise input
    transforms per convolution); TF Lite all but Winograd; ONNX and TF.js none of them.
    test_generator checks each target against the original."""
    model = tiny_model(case)
    fast = model.device_signatures("cpu")  # model.signatures, on a machine without a GPU
    lite, portable = model.tflite_signatures, model.portable_signatures
    bottleneck = 2 * len(model.keras_generator.bottleneck)
    assert op_count(fast.animate_encoded, "DepthwiseConv2dNative") == 16 * bottleneck
    for signatures in (fast, lite):
        assert op_count(signatures.animate_encoded, "SpaceToDepth") >= 1  # the final conv
        assert op_count(signatures.animate_encoded, "DepthToSpace") > 2
        assert op_count(signatures.kp_detector, "DepthToSpace") > 0
    assert op_count(lite.animate_encoded, "DepthwiseConv2dNative") == 0
    assert op_count(lite.animate_encoded, "BatchMatMulV2") == 0
    for function in (portable.animate_encoded, portable.kp_detector):
        for op in ("DepthToSpace", "SpaceToDepth", "BatchMatMulV2"):
            assert op_count(function, op) == 0, op
    assert op_count(portable.animate_encoded, "DepthwiseConv2dNative") == 0


def test_web_litert_signatures_trace_the_winograd4_bottleneck(case):
    """build.py --web_litert's signatures: TF Lite's forms, and the bottleneck by F(4x4, 3x3)
    (42 depthwise input transforms and one batched product per convolution)."""
    model = tiny_model(case)
    web = model.mobile_signatures(static_batch=1, fast=WEB_LITERT_FORMS)
    bottleneck = 2 * len(model.keras_generator.bottleneck)
    assert op_count(web.animate_encoded, "DepthwiseConv2dNative") == 42 * bottleneck
    assert op_count(web.animate_encoded, "BatchMatMulV2") == bottleneck
    assert op_count(web.animate_encoded, "SpaceToDepth") >= 1


def test_gpu_signatures_trace_space_to_depth_only(case):
    """Where TensorFlow may use a GPU, run.py and the SavedModels trace ``GPU_FORMS``: the
    space-to-depth final convolution, no sub-pixel up blocks and no Winograd bottleneck.
    ``device_signatures`` traces them on any machine."""
    model = tiny_model(case)
    gpu = model.device_signatures("gpu")
    assert gpu.fast == GPU_FORMS and model.device_signatures(device_kind()) is model.signatures
    space_to_depth = op_count(gpu.animate_encoded, "SpaceToDepth")
    assert space_to_depth >= 1
    # Each space-to-depth convolution ends in one DepthToSpace; sub-pixel would add more.
    assert op_count(gpu.animate_encoded, "DepthToSpace") == space_to_depth
    assert op_count(gpu.kp_detector, "DepthToSpace") == 0
    for op in ("DepthwiseConv2dNative", "BatchMatMulV2"):
        assert op_count(gpu.animate_encoded, op) == 0, op
    ref = reference(case)
    source, _ = images(case)
    encoded = gpu.encode_source(source_image=source)
    out = gpu.animate_encoded(**encoded, **kp_inputs(ref, "rel_adapt", slice(0, 3)))
    assert_close("prediction", out["prediction"].numpy(), ref["prediction_rel_adapt"], IMAGE_TOL)


def test_generator_broadcasts_source(target_model, case, target):
    """A source of batch 1 with keypoints of batch 3, as the pipeline calls it."""
    ref = reference(case)
    model = target_model(case, target)
    source, _ = images(case)
    out = model.generator(source_image=source, **kp_inputs(ref, "rel_adapt", slice(0, 3)))
    assert_close("prediction", out["prediction"], ref["prediction_rel_adapt"], IMAGE_TOL)


@pytest.mark.parametrize("mode", ["abs", "rel_adapt"])
def test_encoded_source(target_model, case, target, mode):
    """encode_source once, then animate_encoded per batch: the same frames as the generator."""
    ref = reference(case)
    model = target_model(case, target)
    source, _ = images(case)
    encoded = model.encode_source(source_image=source)
    for frames in batches(3):
        out = model.animate_encoded(**encoded, **kp_inputs(ref, mode, frames))
        assert_close(
            f"prediction {frames}", out["prediction"], ref[f"prediction_{mode}"][frames], IMAGE_TOL
        )


def test_sources_describe_the_model_from_their_signatures(target_model, case, target):
    from modules.app.sources import ModelSource

    model = target_model(case, target)
    config = tiny_model(case).config
    assert isinstance(model, ModelSource)
    assert model.frame_shape == config.frame_shape
    assert (model.num_kp, model.has_jacobian) == (config.num_kp, config.estimate_jacobian)
