"""build.py --onnx beyond parity (which test_networks checks with the "onnx" target): the
files, their input and output names, the dynamic batch. Slow: tf2onnx takes seconds a model."""

import numpy as np
import pytest
from helpers import IMAGE_TOL, images, reference

from modules.export.contract import MODULES, signature_stems

pytestmark = pytest.mark.slow


def onnx_folder(built, case):
    return built(case, "--onnx", "--nolite") / "onnx" / case


def test_onnx_files_have_the_signature_names(built):
    import onnxruntime
    import tensorflow as tf

    case = "tiny-vox"
    folder = onnx_folder(built, case)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            "kp_detector.onnx",
            "process_kp.onnx",
            "generator.onnx",
            "generator_encode_source.onnx",
            "generator_animate_encoded.onnx",
            "manifest.json",
        ]
    )
    saved = built(case, "--onnx", "--nolite") / "saved_models" / case
    for module in MODULES:
        loaded = tf.saved_model.load(str(saved / module))
        for key, stem in signature_stems(module).items():
            signature = loaded.signatures[key]
            session = onnxruntime.InferenceSession(str(folder / f"{stem}.onnx"))
            inputs = {i.name: i.shape for i in session.get_inputs()}
            assert sorted(inputs) == sorted(signature.structured_input_signature[1])
            assert sorted(o.name for o in session.get_outputs()) == sorted(
                signature.structured_outputs
            )
            for name, shape in inputs.items():
                want = signature.structured_input_signature[1][name].shape
                # The batch is symbolic (a string), every other dimension as in the signature.
                if want.rank:
                    assert isinstance(shape[0], str) == (want[0] is None), (stem, name, shape)
                    assert shape[1:] == want[1:].as_list(), (stem, name, shape)


def test_onnx_serves_batch_8_with_a_batch_1_source(target_model):
    model = target_model("tiny-vox", "onnx")
    source, driving = images("tiny-vox")
    ref = reference("tiny-vox")
    batch = np.concatenate([driving, driving, driving[:2]])
    value = model.kp_detector(image=batch)["value"]
    np.testing.assert_allclose(value[3:6], model.kp_detector(image=driving)["value"], atol=1e-5)
    kp = {
        "kp_source_value": ref["kp_source_value"],
        "kp_source_jacobian": ref["kp_source_jacobian"],
        "kp_driving_value": np.tile(ref["kp_norm_value_abs"], (3, 1, 1))[:8],
        "kp_driving_jacobian": np.tile(ref["kp_norm_jacobian_abs"], (3, 1, 1, 1))[:8],
    }
    out = model.generator(source_image=source, **kp)
    assert out["prediction"].shape == (8, 256, 256, 3)
    assert np.abs(out["prediction"][6:8] - ref["prediction_abs"][:2]).max() <= IMAGE_TOL
    encoded = model.encode_source(source_image=source)
    out = model.animate_encoded(**encoded, **kp)
    assert np.abs(out["prediction"][6:8] - ref["prediction_abs"][:2]).max() <= IMAGE_TOL


def resident_bytes():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))


def test_conversion_keeps_no_copy_of_the_weights_per_optimizer_pass():
    """tf2onnx rewrites every node's protobuf after each optimizer pass; without
    onnx._fresh_node_protos each rewrite left a copy of the weights in memory (24 passes,
    4 GB for the full-size generator)."""
    from tf2onnx.graph import Graph, Node

    from modules.export.onnx import _fresh_node_protos

    graph = Graph([], opset=17)
    graph.make_const("weights", np.ones((16, 1024, 1024), np.float32))  # 64 MiB
    graph.update_proto()
    original = Node.update_proto
    before = resident_bytes()
    with _fresh_node_protos():
        for _ in range(10):
            graph.update_proto()
    assert resident_bytes() - before < 3 * 64 * 2**20  # 640 MiB more without it
    assert Node.update_proto is original
    np.testing.assert_array_equal(graph.get_node_by_output("weights").get_tensor_value(False), 1)
