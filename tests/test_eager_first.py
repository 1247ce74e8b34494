"""run.py's Keras models run their first calls eagerly and trace later (EagerFirst): both
paths match the original, nothing is traced for a one-batch video, and the eager path checks
its inputs as the tf.function does."""

import numpy as np
import pytest
from helpers import (
    IMAGE_TOL,
    KP_TOL,
    assert_close,
    checkpoint_path,
    config_path,
    images,
    process_kp_inputs,
    reference,
    reference_kp,
)
from test_networks import kp_inputs


def fresh_model():
    from modules import load_model

    return load_model(config_path("tiny-vox"), checkpoint_path("tiny-vox"))


def traces(model, name):
    return getattr(model.signatures, name).experimental_get_tracing_count()


def test_first_batch_traces_nothing_and_later_batches_match():
    model = fresh_model()
    ref = reference("tiny-vox")
    source, driving = images("tiny-vox")
    mode = "rel_adapt"
    kp_source = model.kp_detector(image=source)
    assert_close("kp_source", kp_source["value"], ref["kp_source_value"], KP_TOL)
    encoded = model.encode_source(source_image=source)
    predictions = []
    for step, frames in enumerate((slice(0, 2), slice(2, 4), slice(0, 2))):
        kp = model.kp_detector(image=driving[frames])
        assert_close("kp_driving", kp["value"], ref["kp_driving_value"][frames], KP_TOL)
        initial = {k: v[:1] for k, v in reference_kp(ref, "driving").items()}
        kp_norm = model.process_kp(**process_kp_inputs(kp_source, kp, initial))
        assert_close("kp_norm", kp_norm["value"], ref[f"kp_norm_value_{mode}"][frames], KP_TOL)
        out = model.animate_encoded(**encoded, **kp_inputs(ref, mode, frames))
        assert_close("prediction", out["prediction"], ref[f"prediction_{mode}"][frames], IMAGE_TOL)
        predictions.append(out["prediction"])
        if step == 0:  # a video of one batch traces nothing
            assert traces(model, "kp_detector") == 0 and traces(model, "animate_encoded") == 0
    assert traces(model, "kp_detector") == 1 and traces(model, "animate_encoded") == 1
    # process_kp (small, costly to trace) and encode_source (once a video) stay eager
    assert traces(model, "process_kp") == 0 and traces(model, "encode_source") == 0
    # the eager and the traced run of the same batch agree to float32 noise
    np.testing.assert_allclose(predictions[0], predictions[2], atol=1e-5)


def test_eager_calls_check_their_inputs():
    model = fresh_model()
    source, _ = images("tiny-vox")
    with pytest.raises(ValueError, match="'image' has shape"):
        model.kp_detector(image=source[..., :2])
    with pytest.raises(TypeError, match="missing input 'image'"):
        model.kp_detector()
    with pytest.raises(TypeError, match="unexpected inputs: extra"):
        model.kp_detector(image=source, extra=source)


def test_eager_first_off_traces_from_the_first_call():
    """The dataset modes' setting: only process_kp and encode_source run eagerly."""
    from modules import load_model

    model = load_model(config_path("tiny-vox"), checkpoint_path("tiny-vox"), eager_first=False)
    source, _ = images("tiny-vox")
    kp = model.kp_detector(image=source)
    model.encode_source(source_image=source)
    assert traces(model, "kp_detector") == 1 and traces(model, "encode_source") == 0
    assert_close("kp_source", kp["value"], reference("tiny-vox")["kp_source_value"], KP_TOL)
