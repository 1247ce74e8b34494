"""process_kp against the original normalize_kp outputs, and the closed-form 2x2 ops."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from modules.hull import convex_hull_area
from modules.jacobian import inverse_2x2, matmul_2x2, matvec_2x2
from modules.keypoints import process_kp

FIXTURES = Path(__file__).parent / "fixtures"
CASES = ["tiny-vox", "tiny-mgif"]
# (use_relative_movement, use_relative_jacobian, adapt_movement_scale) of each reference mode.
MODES = {"abs": (0.0, 0.0, 0.0), "rel": (1.0, 1.0, 0.0), "rel_adapt": (1.0, 1.0, 1.0)}
TOL = 5e-5


@pytest.fixture(scope="module", params=CASES)
def ref(request):
    with np.load(FIXTURES / request.param / "reference.npz") as data:
        return dict(data)


def kp_inputs(ref, frames=slice(None)):
    """Positional keypoint arguments of process_kp; the initial frame is driving frame 0."""
    return (
        ref["kp_source_value"],
        ref["kp_source_jacobian"],
        ref["kp_driving_value"][frames],
        ref["kp_driving_jacobian"][frames],
        ref["kp_driving_value"][:1],
        ref["kp_driving_jacobian"][:1],
    )


def assert_close(got, want):
    assert np.all(np.isfinite(got))
    assert np.abs(np.asarray(got) - want).max() <= TOL


# -- 2x2 ops --------------------------------------------------------------------------------------


def test_inverse_2x2_matches_numpy():
    m = np.random.default_rng(0).normal(size=(4, 10, 2, 2)).astype(np.float32)
    want = np.linalg.inv(m.astype(np.float64))
    np.testing.assert_allclose(inverse_2x2(m).numpy(), want, rtol=1e-4, atol=1e-5)


def test_matmul_2x2_broadcasts_like_numpy():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3, 10, 2, 2)).astype(np.float32)
    b = rng.normal(size=(1, 10, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(matmul_2x2(a, b).numpy(), np.matmul(a, b), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(matmul_2x2(b, a).numpy(), np.matmul(b, a), rtol=1e-5, atol=1e-6)
    c = rng.normal(size=(2, 2)).astype(np.float32)
    np.testing.assert_allclose(matmul_2x2(a, c).numpy(), np.matmul(a, c), rtol=1e-5, atol=1e-6)


def test_matvec_2x2_matches_numpy():
    rng = np.random.default_rng(2)
    m = rng.normal(size=(3, 5, 2, 2)).astype(np.float32)
    v = rng.normal(size=(3, 5, 2)).astype(np.float32)
    np.testing.assert_allclose(
        matvec_2x2(m, v).numpy(), np.einsum("...ij,...j->...i", m, v), rtol=1e-5, atol=1e-6
    )


# -- process_kp -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_matches_original_batch_3(ref, mode):
    out = process_kp(*kp_inputs(ref), *MODES[mode])
    assert_close(out["value"], ref[f"kp_norm_value_{mode}"])
    assert_close(out["jacobian"], ref[f"kp_norm_jacobian_{mode}"])


@pytest.mark.parametrize("mode", MODES)
def test_matches_original_one_frame_at_a_time(ref, mode):
    for frame in range(3):
        out = process_kp(*kp_inputs(ref, slice(frame, frame + 1)), *MODES[mode])
        assert_close(out["value"], ref[f"kp_norm_value_{mode}"][frame : frame + 1])
        assert_close(out["jacobian"], ref[f"kp_norm_jacobian_{mode}"][frame : frame + 1])


def test_relative_movement_without_relative_jacobian(ref):
    # The original keeps the driving jacobian then; the value is the 'rel' one.
    out = process_kp(*kp_inputs(ref), 1.0, 0.0, 0.0)
    assert_close(out["value"], ref["kp_norm_value_rel"])
    np.testing.assert_array_equal(out["jacobian"], ref["kp_driving_jacobian"])
    # A relative jacobian without relative movement is ignored, as in the original.
    out = process_kp(*kp_inputs(ref), 0.0, 1.0, 1.0)
    np.testing.assert_array_equal(out["value"], ref["kp_driving_value"])
    np.testing.assert_array_equal(out["jacobian"], ref["kp_driving_jacobian"])


def test_without_jacobians(ref):
    args = kp_inputs(ref)
    out = process_kp(args[0], None, args[2], None, args[4], None, *MODES["rel_adapt"])
    assert set(out) == {"value"}
    assert_close(out["value"], ref["kp_norm_value_rel_adapt"])
    with pytest.raises(ValueError):
        process_kp(args[0], args[1], args[2], None, args[4], None, 1.0, 1.0, 1.0)


def test_degenerate_source_keeps_scale_one(ref):
    args = list(kp_inputs(ref))
    k = args[0].shape[1]
    t = np.linspace(-0.5, 0.5, k, dtype=np.float32)
    args[0] = np.stack([t, 0.5 * t], -1)[None]  # all source keypoints collinear
    assert convex_hull_area(args[0][0]).numpy() == 0.0
    # A singular initial jacobian only matters when the jacobian is made relative.
    args[5] = np.zeros_like(args[5])
    out = process_kp(*args, 1.0, 0.0, 1.0)
    want = args[2] - args[4] + args[0]
    np.testing.assert_allclose(out["value"], want, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(out["jacobian"], args[3])
    # The degenerate initial hull gives scale 1 too.
    args = list(kp_inputs(ref))
    args[4] = np.zeros_like(args[4])
    out = process_kp(*args, 1.0, 1.0, 1.0)
    np.testing.assert_allclose(out["value"], args[2] + args[0], rtol=0, atol=1e-7)


# -- graph and TF Lite ----------------------------------------------------------------------------


def signature(k):
    def spec(shape, name):
        return tf.TensorSpec(shape, tf.float32, name)

    return [
        spec([1, k, 2], "kp_source_value"),
        spec([1, k, 2, 2], "kp_source_jacobian"),
        spec([None, k, 2], "kp_driving_value"),
        spec([None, k, 2, 2], "kp_driving_jacobian"),
        spec([1, k, 2], "kp_initial_value"),
        spec([1, k, 2, 2], "kp_initial_jacobian"),
        spec([], "use_relative_movement"),
        spec([], "use_relative_jacobian"),
        spec([], "adapt_movement_scale"),
    ]


@pytest.fixture(scope="module")
def graph_fn():
    return tf.function(process_kp, input_signature=signature(10))


@pytest.fixture(scope="module")
def tflite_runner(graph_fn):
    module = tf.Module()
    module.process_kp = graph_fn
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [graph_fn.get_concrete_function()], module
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return Interpreter(model_content=converter.convert()).get_signature_runner()


@pytest.mark.parametrize("mode", MODES)
def test_tf_function_dynamic_batch(ref, graph_fn, mode):
    flags = [tf.constant(f) for f in MODES[mode]]
    for frames in (slice(0, 1), slice(2, 3), slice(None)):
        out = graph_fn(*kp_inputs(ref, frames), *flags)
        assert_close(out["value"], ref[f"kp_norm_value_{mode}"][frames])
        assert_close(out["jacobian"], ref[f"kp_norm_jacobian_{mode}"][frames])


@pytest.mark.parametrize("mode", MODES)
def test_tflite_builtins_dynamic_batch(ref, tflite_runner, mode):
    names = [s.name for s in signature(10)]
    for frames in (slice(0, 1), slice(1, 2), slice(None), slice(0, 1)):
        values = list(kp_inputs(ref, frames)) + [np.float32(f) for f in MODES[mode]]
        out = tflite_runner(**{n: np.asarray(v, np.float32) for n, v in zip(names, values)})
        assert_close(out["value"], ref[f"kp_norm_value_{mode}"][frames])
        assert_close(out["jacobian"], ref[f"kp_norm_jacobian_{mode}"][frames])
