"""run.py's Keras models run process_kp and encode_source eagerly (``Eager``), never traced:
the same numbers as the original's, the per-frame signatures traced, and the eager calls check
their inputs as the tf.functions do."""

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


def test_eager_signatures_match_the_original_and_are_never_traced():
    model = fresh_model()
    ref = reference("tiny-vox")
    source, driving = images("tiny-vox")
    mode = "rel_adapt"
    kp_source = model.kp_detector(image=source)
    assert_close("kp_source", kp_source["value"], ref["kp_source_value"], KP_TOL)
    encoded = model.encode_source(source_image=source)
    initial = {k: v[:1] for k, v in reference_kp(ref, "driving").items()}
    predictions = []
    for frames in (slice(0, 2), slice(2, 3), slice(0, 2)):
        kp = model.kp_detector(image=driving[frames])
        kp_norm = model.process_kp(**process_kp_inputs(kp_source, kp, initial))
        assert_close("kp_norm", kp_norm["value"], ref[f"kp_norm_value_{mode}"][frames], KP_TOL)
        out = model.animate_encoded(**encoded, **kp_inputs(ref, mode, frames))
        assert_close("prediction", out["prediction"], ref[f"prediction_{mode}"][frames], IMAGE_TOL)
        predictions.append(out["prediction"])
    assert traces(model, "process_kp") == 0 and traces(model, "encode_source") == 0
    assert traces(model, "kp_detector") == 1 and traces(model, "animate_encoded") == 1
    # the same batch twice: the same bits (each signature always takes the same path)
    np.testing.assert_array_equal(predictions[0], predictions[2])


def test_eager_calls_check_their_inputs():
    model = fresh_model()
    source, _ = images("tiny-vox")
    with pytest.raises(ValueError, match="'source_image' has shape"):
        model.encode_source(source_image=source[..., :2])
    with pytest.raises(TypeError, match="missing input 'source_image'"):
        model.encode_source()
    with pytest.raises(TypeError, match="unexpected inputs: extra"):
        model.encode_source(source_image=source, extra=source)


def test_background_trace_gives_the_same_frames():
    """run.py traces animate_encoded in a thread while the source is encoded: the frames are
    bit for bit those of a model that traces it on the first call, and it is traced once."""
    ref = reference("tiny-vox")
    source, _ = images("tiny-vox")
    frames = slice(0, 2)
    predictions = []
    for background in (True, False):
        model = fresh_model()
        if background:
            model.trace_in_background()
        encoded = model.encode_source(source_image=source)
        out = model.animate_encoded(**encoded, **kp_inputs(ref, "rel_adapt", frames))
        assert traces(model, "animate_encoded") == 1
        predictions.append(out["prediction"])
    np.testing.assert_array_equal(predictions[0], predictions[1])
