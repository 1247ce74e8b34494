"""Strict, name-based loading of the original's state_dicts."""

import numpy as np
import pytest
from helpers import checkpoint_path, config_path

from modules import load_model
from modules.convert.checkpoint import read_state_dicts
from modules.convert.config import load_config
from modules.convert.model import build_models
from modules.convert.weights import WeightError, load_state_dict


@pytest.fixture(scope="module")
def vox():
    generator_state, kp_state = read_state_dicts(checkpoint_path("tiny-vox"))
    kp_detector, generator = build_models(load_config(config_path("tiny-vox")))
    return kp_detector, generator, kp_state, generator_state


def test_conv_kernels_are_transposed_by_name(vox):
    kp_detector, generator, kp_state, generator_state = vox
    load_state_dict(generator, generator_state, "generator")
    layer = {layer.name: layer for layer in generator._flatten_layers()}["bottleneck.r1.conv2"]
    np.testing.assert_array_equal(
        layer.kernel.numpy(), generator_state["bottleneck.r1.conv2.weight"].transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(layer.bias.numpy(), generator_state["bottleneck.r1.conv2.bias"])


def test_wrong_checkpoint_for_config_names_key_and_shapes():
    """The tiny-vox config with the tiny-mgif checkpoint (single jacobian map)."""
    with pytest.raises(WeightError) as error:
        load_model(config_path("tiny-vox"), checkpoint_path("tiny-mgif"))
    message = str(error.value)
    assert (
        "jacobian.weight has shape [4, 11, 7, 7] in the checkpoint but the config gives "
        "[40, 11, 7, 7]" in message
    )
    assert "jacobian.bias has shape [4]" in message and "[40]" in message
    assert str(checkpoint_path("tiny-mgif")) in message


def test_missing_unexpected_and_misshaped_keys_are_all_listed(vox):
    kp_detector, _, kp_state, _ = vox
    state = dict(kp_state)
    del state["kp.bias"]
    state["kp.extra"] = np.zeros(3, np.float32)
    state["predictor.decoder.up_blocks.0.norm.running_var"] = np.zeros(7, np.float32)
    with pytest.raises(WeightError) as error:
        load_state_dict(kp_detector, state, "kp_detector")
    message = str(error.value)
    assert "missing keys: kp.bias" in message
    assert "unexpected keys: kp.extra" in message
    assert "predictor.decoder.up_blocks.0.norm.running_var has shape [7]" in message


def test_only_buffers_may_be_absent(vox):
    kp_detector, _, kp_state, _ = vox
    state = {
        k: v
        for k, v in kp_state.items()
        if not k.endswith("num_batches_tracked") and k != "down.weight"
    }
    load_state_dict(kp_detector, state, "kp_detector")


def test_anti_alias_buffer_is_checked(vox):
    kp_detector, _, kp_state, _ = vox
    state = dict(kp_state)
    state["down.weight"] = state["down.weight"] * 1.01
    with pytest.raises(WeightError, match="down.weight differs from the anti-alias kernel"):
        load_state_dict(kp_detector, state, "kp_detector")
