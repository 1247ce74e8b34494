"""build.py --web's output, without a browser: what model.json says, the files the page
reads, which convolutions --web_int8 quantizes, float16 weights, and the errors of the web
build. The page itself: tests/test_web.py."""

import json
import os

import numpy as np
import pytest
from helpers import CASES, reference, run_build, tiny_flags, tiny_model


def test_web_models_describe_themselves(tmp_path):
    """model.json gives the page what it needs; index.json lists the folder's web models and
    ignores anything else."""
    from modules.export import web

    root = tmp_path / "models"
    (root / "not-a-model").mkdir(parents=True)
    (root / "not-a-model" / "model.json").write_text("{broken")
    (root / "other").mkdir()
    (root / "other" / "model.json").write_text(json.dumps({"format": "something else"}))
    for name, weights in (("a", "float32"), ("a-float16", "float16")):
        (root / name).mkdir()
        meta = {
            "format": "fomm-web-1",
            "frame_shape": [256, 256, 3],
            "weights": weights,
            "size_bytes": 7,
        }
        (root / name / "model.json").write_text(json.dumps(meta))
    web.write_index(root)
    index = json.loads((root / "index.json").read_text())
    assert [(m["name"], m["weights"]) for m in index["models"]] == [
        ("a", "float32"),
        ("a-float16", "float16"),
    ]


@pytest.mark.slow
def test_build_web_writes_what_the_page_reads(web_models):
    """build.py --web (with the SavedModels in the same call): four ONNX models with the
    signature names, model.json and index.json."""
    import onnxruntime

    index = json.loads((web_models / "index.json").read_text())
    names = sorted(f"{case}{kind}" for case in CASES for kind in ("", "-int8", "-litert"))
    assert [m["name"] for m in index["models"]] == names
    for case in [name for name in names if not name.endswith("-litert")]:
        meta = json.loads((web_models / case / "model.json").read_text())
        weights = "int8" if case.endswith("-int8") else "float32"
        assert meta["format"] == "fomm-web-1" and meta["weights"] == weights
        assert meta["frame_shape"] == [256, 256, 3] and meta["num_kp"] == 10 and meta["jacobian"]
        assert sorted(os.listdir(web_models / case)) == sorted(
            [*meta["files"].values(), "model.json", "manifest.json"]
        )
        for role, entry in meta["models"].items():
            session = onnxruntime.InferenceSession(str(web_models / case / entry["file"]))
            assert [i.name for i in session.get_inputs()] == entry["inputs"], role
            assert sorted(o.name for o in session.get_outputs()) == sorted(entry["outputs"]), role
        assert meta["models"]["kp_detector"]["inputs"] == ["image"]
    assert not [n for n in os.listdir(web_models) if ".tmp-" in n or ".old-" in n]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_build_web_litert_writes_batch_1_tflite_models(web_models, case):
    """build.py --web_litert: the three TF Lite models with static batch 1 (LiteRT.js needs
    static shapes), and model.json naming the signature of each of the page's four models."""
    from ai_edge_litert.interpreter import Interpreter

    folder = web_models / f"{case}-litert"
    meta = json.loads((folder / "model.json").read_text())
    assert meta["format"] == "fomm-web-1" and meta["runtime"] == "litertjs (wasm)"
    assert meta["weights"] == "float32" and meta["batch"] == 1
    assert meta["frame_shape"] == [256, 256, 3]
    files = ["generator.tflite", "kp_detector.tflite", "process_kp.tflite"]
    assert sorted(os.listdir(folder)) == sorted([*files, "model.json", "manifest.json"])
    for role, entry in meta["models"].items():
        runner = Interpreter(str(folder / entry["file"])).get_signature_runner(entry["signature"])
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
        assert sorted(inputs) == entry["inputs"] and sorted(outputs) == entry["outputs"], role
        for detail in [*inputs.values(), *outputs.values()]:
            assert detail["shape_signature"].tolist() == detail["shape"].tolist(), role
            assert len(detail["shape"]) == 0 or detail["shape"][0] == 1, role
    assert meta["files"]["animate_encoded"] == "generator.tflite"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_int8_quantizes_only_the_generators_heavy_convolutions(web_models, case):
    """--web_int8: the keypoint detector, process_kp and the source encoder are the float32
    files; in the per-frame generator exactly the bottleneck convolutions but the first
    run as int8 ConvInteger."""
    import re

    import onnx
    from modules.export.quantize import FLOAT32_LAYERS
    from modules.export.web import INT8_LAYERS

    meta = json.loads((web_models / case / "model.json").read_text())
    for role, file in meta["files"].items():
        float32 = (web_models / case / file).read_bytes()
        int8 = (web_models / f"{case}-int8" / file).read_bytes()
        assert (int8 == float32) == (role != "animate_encoded"), role
    graph = onnx.load(str(web_models / f"{case}-int8" / meta["files"]["animate_encoded"])).graph
    int8 = sorted(n.input[1] for n in graph.node if n.op_type == "ConvInteger")
    wanted = sorted(
        f"{n.input[1]}_quantized"
        for n in onnx.load(str(web_models / case / meta["files"]["animate_encoded"])).graph.node
        if n.op_type == "Conv"
        and re.search(INT8_LAYERS, n.input[1])
        and not re.search(FLOAT32_LAYERS, n.input[1])
    )
    assert wanted and int8 == wanted


@pytest.mark.slow
def test_float16_weights_are_the_float32_graph_with_rounded_weights(tmp_path):
    """--web_float16: the generator's weights stored as float16 and cast back, so the model
    computes exactly what the float32 model computes with float16-rounded weights."""
    import onnxruntime

    import onnx
    from modules.export import web
    from onnx import numpy_helper

    float32 = web.onnx_models(tiny_model("tiny-vox"))["animate_encoded"]
    float16 = web.float16_weights(float32)
    assert len(float16) < 0.6 * len(float32)

    rounded = onnx.load_from_string(float32)
    for init in rounded.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32 and array.size >= web.FLOAT16_MIN_SIZE:
            init.CopyFrom(
                numpy_helper.from_array(array.astype(np.float16).astype(np.float32), init.name)
            )
    rng = np.random.default_rng(0)
    sessions = [
        onnxruntime.InferenceSession(model)
        for model in (rounded.SerializeToString(), float16, float32)
    ]
    feeds = {
        i.name: rng.uniform(
            0, 1, [2 if d is None or isinstance(d, str) else d for d in i.shape]
        ).astype(np.float32)
        for i in sessions[0].get_inputs()
    }
    ref = reference("tiny-vox")
    feeds.update(
        kp_source_value=ref["kp_source_value"].repeat(2, 0),
        kp_source_jacobian=ref["kp_source_jacobian"].repeat(2, 0),
        kp_driving_value=ref["kp_driving_value"][:2],
        kp_driving_jacobian=ref["kp_driving_jacobian"][:2],
    )
    rounded_out, float16_out, float32_out = (s.run(["prediction"], feeds)[0] for s in sessions)
    np.testing.assert_allclose(float16_out, rounded_out, atol=1e-6, rtol=0)
    assert np.abs(float16_out - float32_out).max() > 0  # the weights did change


def test_unwritable_web_models_folder_gives_one_line(tmp_path):
    """Checked before anything is converted."""
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    result = run_build(
        *tiny_flags("tiny-vox"),
        "--saved_models",
        str(tmp_path / "saved_models"),
        "--nolite",
        "--web",
        "--web_models",
        str(blocker / "models"),
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert f"Cannot write '--web_models {blocker / 'models'}'" in lines[-1]
    assert "is not a folder" in lines[-1]
    assert not (tmp_path / "saved_models").exists()
    assert blocker.read_text() == "a file, not a folder"


def test_web_does_not_go_with_module():
    result = run_build("--web", "--module", "generator")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("--web does not go with --module")
