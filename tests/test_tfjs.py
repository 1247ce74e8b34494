"""build.py --tfjs: the TF.js graph models in Node (@tensorflow/tfjs 4.22, tests/node/) on the
cpu and wasm backends, against the original's outputs (tests/fixtures/*/reference.npz).

Slow: the converter runs in its own environment and Node starts per backend. Needs what
install.sh installs (.venv-tfjs/, tests/node/node_modules/); outside CI the tests skip without
it, in CI (CI=true) they fail.
"""

import base64
import json
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest
from helpers import IMAGE_TOL, KP_TOL, MODES, assert_close, build, images, reference

from modules.export.contract import MODULES, signature_stems

pytestmark = pytest.mark.slow

NODE_DIR = pathlib.Path(__file__).parent / "node"
REPO = pathlib.Path(__file__).parent.parent
BACKENDS = ("cpu", "wasm")
# Backends whose generator is right only at batch 1 (see README, "TF.js models"): the wasm
# backend gets every frame after the first wrong at batch > 1 (tensorflow/tfjs#8658).
BATCH_1_ONLY = {"wasm"}


def missing():
    """Why the TF.js tests cannot run here, or None."""
    if not (REPO / ".venv-tfjs" / "bin" / "python").is_file():
        return ".venv-tfjs/ (the tensorflowjs converter) is not installed: run bash install.sh"
    if shutil.which("node") is None:
        return "node is not on PATH: install Node.js 20 and run bash install.sh"
    if not (NODE_DIR / "node_modules" / "@tensorflow" / "tfjs").is_dir():
        return "tests/node/node_modules is not installed: run bash install.sh"
    return None


@pytest.fixture(scope="session")
def tfjs_root(tmp_path_factory):
    reason = missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    roots = {}

    def get(case):
        if case not in roots:
            roots[case] = tmp_path_factory.mktemp(f"tfjs-{case}")
            # tiny-vox also checks that the flags combine in one call.
            both = ("--onnx",) if case == "tiny-vox" else ()
            build(case, roots[case], "--tfjs", *both, "--nolite")
        return roots[case] / "tfjs" / case

    return get


def encode(array):
    array = np.asarray(array, np.float32)  # (ascontiguousarray makes scalars 1-D)
    return {"shape": list(array.shape), "data": base64.b64encode(array.tobytes()).decode()}


def decode(array):
    return np.frombuffer(base64.b64decode(array["data"]), np.float32).reshape(array["shape"])


def run_node(tmp_path, backend, calls):
    """Runs ``calls`` [(model folder, {input: array})] in one Node process; their outputs."""
    request = tmp_path / f"request-{backend}.json"
    result = tmp_path / f"result-{backend}.json"
    request.write_text(
        json.dumps(
            {
                "backend": backend,
                "calls": [
                    {"model": str(model), "inputs": {k: encode(v) for k, v in inputs.items()}}
                    for model, inputs in calls
                ],
            }
        )
    )
    done = subprocess.run(
        ["node", str(NODE_DIR / "run_tfjs.js"), str(request), str(result)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(result.read_text())
    assert out["backend"] == backend
    return [{k: decode(v) for k, v in r.items()} for r in out["results"]]


def batches(n, backend):
    """Every frame alone, then all at once where the backend allows batch > 1."""
    single = [slice(i, i + 1) for i in range(n)]
    return single if backend in BATCH_1_ONLY else [*single, slice(0, n)]


def kp_inputs(ref, mode, frames):
    return {
        "kp_source_value": ref["kp_source_value"],
        "kp_source_jacobian": ref["kp_source_jacobian"],
        "kp_driving_value": ref[f"kp_norm_value_{mode}"][frames],
        "kp_driving_jacobian": ref[f"kp_norm_jacobian_{mode}"][frames],
    }


def cases_and_checks(root, case, backend):
    """(model folder, inputs, check(outputs)) for every comparison of one case and backend."""
    ref = reference(case)
    source, driving = images(case)
    jobs = []

    def add(stem, inputs, expected):
        def check(out, expected=expected, what=f"{stem} {list(inputs)[0]}"):
            for name, (want, tol) in expected.items():
                assert_close(f"{what}: {name}", out[name], want, tol)

        jobs.append((root / stem, inputs, check))

    add(
        "kp_detector",
        {"image": source},
        {
            "value": (ref["kp_source_value"], KP_TOL),
            "jacobian": (ref["kp_source_jacobian"], KP_TOL),
        },
    )
    # The keypoint detector and process_kp are right at batch > 1 on every backend.
    for frames in batches(3, "cpu"):
        add(
            "kp_detector",
            {"image": driving[frames]},
            {
                "value": (ref["kp_driving_value"][frames], KP_TOL),
                "jacobian": (ref["kp_driving_jacobian"][frames], KP_TOL),
            },
        )
    for mode, (relative, relative_jacobian, adapt) in MODES.items():
        for frames in batches(3, "cpu"):
            add(
                "process_kp",
                {
                    "kp_source_value": ref["kp_source_value"],
                    "kp_source_jacobian": ref["kp_source_jacobian"],
                    "kp_driving_value": ref["kp_driving_value"][frames],
                    "kp_driving_jacobian": ref["kp_driving_jacobian"][frames],
                    "kp_initial_value": ref["kp_driving_value"][:1],
                    "kp_initial_jacobian": ref["kp_driving_jacobian"][:1],
                    "use_relative_movement": np.float32(relative),
                    "use_relative_jacobian": np.float32(relative_jacobian),
                    "adapt_movement_scale": np.float32(adapt),
                },
                {
                    "value": (ref[f"kp_norm_value_{mode}"][frames], KP_TOL),
                    "jacobian": (ref[f"kp_norm_jacobian_{mode}"][frames], KP_TOL),
                },
            )
    for mode in ("abs", "rel_adapt"):
        for frames in batches(3, backend):
            expected = {"prediction": (ref[f"prediction_{mode}"][frames], IMAGE_TOL)}
            if mode == "rel_adapt":
                expected["deformation"] = (ref["deformation_rel_adapt"][frames], IMAGE_TOL)
            # A batch-1 source with B driving keypoints, as the pipeline calls it.
            add("generator", {"source_image": source, **kp_inputs(ref, mode, frames)}, expected)
    return jobs


@pytest.mark.parametrize("backend", BACKENDS)
def test_tfjs_matches_the_original(tfjs_root, case, backend, tmp_path):
    root = tfjs_root(case)
    jobs = cases_and_checks(root, case, backend)
    # The generator's halves: encode_source once, animate_encoded per batch.
    ref = reference(case)
    source, _ = images(case)
    jobs.append((root / "generator_encode_source", {"source_image": source}, lambda out: None))
    outputs = run_node(tmp_path, backend, [(m, i) for m, i, _ in jobs])
    for (_, _, check), out in zip(jobs, outputs):
        check(out)
    features = outputs[-1]
    calls = [
        (root / "generator_animate_encoded", {**features, **kp_inputs(ref, "rel_adapt", frames)})
        for frames in batches(3, backend)
    ]
    for frames, out in zip(batches(3, backend), run_node(tmp_path, backend, calls)):
        assert_close(
            f"animate_encoded {frames}",
            out["prediction"],
            ref["prediction_rel_adapt"][frames],
            IMAGE_TOL,
        )


def test_tfjs_folders_keep_the_signature_names(tfjs_root):
    """One folder per signature, with the SavedModel signature's input and output names; the
    ONNX models of the same call beside them."""
    import tensorflow as tf

    root = tfjs_root("tiny-vox")
    saved = root.parent.parent / "saved_models" / "tiny-vox"
    stems = [stem for module in MODULES for stem in signature_stems(module).values()]
    onnx = root.parent.parent / "onnx" / "tiny-vox"
    assert sorted(os.listdir(onnx)) == sorted(
        [*(f"{stem}.onnx" for stem in stems), "manifest.json"]
    )
    assert not (root.parent.parent / "tflite").exists()
    assert sorted(os.listdir(root)) == sorted([*stems, "manifest.json"])
    for module in MODULES:
        loaded = tf.saved_model.load(str(saved / module))
        for key, stem in signature_stems(module).items():
            model = json.loads((root / stem / "model.json").read_text())
            assert model["format"] == "graph-model"
            signature = loaded.signatures[key]
            assert sorted(model["signature"]["inputs"]) == sorted(
                signature.structured_input_signature[1]
            )
            assert sorted(model["signature"]["outputs"]) == sorted(signature.structured_outputs)
