"""Everything a config can switch builds, loads a state_dict of the original's layout and runs
with the documented inputs and outputs.

The two fixtures cover the 256x256 models with jacobians and occlusion; these variants have no
reference outputs, so they are checked for structure, shapes and finite values.
"""

import numpy as np
import pytest
import yaml
from helpers import config_path

from modules.convert.config import load_config
from modules.convert.model import Model, build_models
from modules.convert.weights import load_state_dict, random_state_dict


def variant_model(tmp_path, edit):
    raw = yaml.safe_load(config_path("tiny-vox").read_text())
    edit(raw["model_params"], raw["dataset_params"])
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    config = load_config(path)
    kp_detector, generator = build_models(config)
    load_state_dict(kp_detector, random_state_dict(kp_detector, 0), "kp_detector")
    load_state_dict(generator, random_state_dict(generator, 1), "generator")
    return Model(config, kp_detector, generator)


VARIANTS = {
    "zero-order (no jacobian)": lambda m, d: m["common_params"].update(estimate_jacobian=False),
    "no occlusion map": lambda m, d: m["generator_params"].update(estimate_occlusion_map=False),
    "num_kp 5": lambda m, d: m["common_params"].update(num_kp=5),
    "num_kp 15": lambda m, d: m["common_params"].update(num_kp=15),
    "kp detector pad 3": lambda m, d: m["kp_detector_params"].update(pad=3),
    "frame 384x384": lambda m, d: d.update(frame_shape=[384, 384, 3]),
    "frame 512x512": lambda m, d: d.update(frame_shape=[512, 512, 3]),
    "scale factors 0.5": lambda m, d: (
        m["kp_detector_params"].update(scale_factor=0.5),
        m["generator_params"]["dense_motion_params"].update(scale_factor=0.5),
    ),
    "no dense motion network": lambda m, d: m["generator_params"].pop("dense_motion_params"),
}


# Three variants in the fast tier (the other switches are in the slow one): no jacobians, no
# dense motion network (one prediction per driving frame) and another number of keypoints.
FAST = ("zero-order (no jacobian)", "no dense motion network", "num_kp 5")


@pytest.mark.parametrize(
    "name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in VARIANTS]
)
def test_variant_runs_with_documented_signatures(tmp_path, name):
    model = variant_model(tmp_path, VARIANTS[name])
    config = model.config
    height, width = config.frame_shape
    num_kp, jacobian = config.num_kp, config.estimate_jacobian
    rng = np.random.default_rng(1)
    source = rng.random((1, height, width, 3), dtype=np.float32)
    driving = rng.random((2, height, width, 3), dtype=np.float32)

    assert (model.frame_shape, model.num_kp, model.has_jacobian) == (
        (height, width),
        num_kp,
        jacobian,
    )
    kp_source = model.kp_detector(image=source)
    kp_driving = model.kp_detector(image=driving)
    assert set(kp_driving) == ({"value", "jacobian"} if jacobian else {"value"})
    assert kp_driving["value"].shape == (2, num_kp, 2)

    def named(role, kp):
        return {f"kp_{role}_{k}": v for k, v in kp.items()}

    flags = dict(use_relative_movement=1.0, use_relative_jacobian=1.0, adapt_movement_scale=1.0)
    kp_norm = model.process_kp(
        **named("source", kp_source),
        **named("driving", kp_driving),
        **named("initial", {k: v[:1] for k, v in kp_driving.items()}),
        **flags,
    )
    assert set(kp_norm) == set(kp_driving)

    out = model.generator(
        source_image=source, **named("source", kp_source), **named("driving", kp_norm)
    )
    expected = {"prediction"}
    if config.dense_motion is not None:
        expected |= {"mask", "deformation"} | (
            {"occlusion_map"} if config.estimate_occlusion_map else set()
        )
    assert set(out) == expected
    assert out["prediction"].shape == (2, height, width, 3)
    encoded = model.encode_source(source_image=source)
    split = model.animate_encoded(
        **encoded, **named("source", kp_source), **named("driving", kp_norm)
    )
    np.testing.assert_allclose(split["prediction"], out["prediction"], atol=1e-6)
    if config.dense_motion is None:  # nothing moves: every driving frame gives the same image
        np.testing.assert_array_equal(out["prediction"][0], out["prediction"][1])
    if "mask" in out:
        scale = config.dense_motion.scale_factor
        h, w = int(np.ceil(height * scale)), int(np.ceil(width * scale))
        assert out["mask"].shape == (2, h, w, num_kp + 1)
        assert out["deformation"].shape == (2, h, w, 2)
        np.testing.assert_allclose(out["mask"].sum(-1), 1, atol=1e-5)
    for key, value in out.items():
        assert np.isfinite(value).all(), key
