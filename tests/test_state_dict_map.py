"""The Keras models of every original config expect exactly the original's state_dict."""

import json

import pytest
from helpers import FIXTURES, ROOT

from modules.convert.config import load_config
from modules.convert.model import build_models
from modules.convert.weights import torch_state

ORIGINAL = json.loads((FIXTURES / "original_state_dicts.json").read_text())


@pytest.mark.parametrize("config_name", sorted(ORIGINAL))
def test_key_and_shape_map(config_name):
    kp_detector, generator = build_models(load_config(ROOT / "config" / config_name))
    for part, model in (("kp_detector", kp_detector), ("generator", generator)):
        got = [(key, list(entry.shape)) for key, entry in torch_state(model).items()]
        want = list(ORIGINAL[config_name][part].items())
        assert got == want, f"{config_name} {part}: differs from the original's state_dict"
