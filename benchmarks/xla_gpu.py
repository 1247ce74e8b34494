"""run.py's per-frame work on a GPU machine that has no TensorFlow: the graphs TensorFlow
traces, exported as XLA HLO, then compiled and run there with JAX (README, GPU).

    python benchmarks/xla_gpu.py export OUT [--batch 8,16] [--forms plain,all] [--workdir DIR]
    python xla_gpu.py run OUT [--platform gpu] [--repeats 50]  # there, jax and numpy only

``export`` writes to OUT:
- ``vox-FORMS-bB``: the full-size vox model's per-frame work at each batch B (kp_detector on
  the driving frames, process_kp with --relative --adapt_scale, animate_encoded), traced with
  each set of faster convolutions (``layers.fast_convolutions``): plain, each form alone, all
  of them. Its 180 MB of weights stay here: they are parameters of the HLO, and ``run`` gives
  each the mean and spread this model's tensor has (speed does not depend on the values).
- ``tiny-STAGE``: the tiny-vox fixture's kp_detector, encode_source and animate_encoded with
  its real weights, traced as TensorFlow traces them on a GPU (``GPU_FORMS``), with the
  original's outputs from reference.npz: the parity check.

``run`` compiles each module for the platform and prints frames/s (best and median) and,
for the tiny modules, the largest difference from the original and from TensorFlow's own
(CPU) result. XLA is the compiler behind ``tf.function(jit_compile=True)``; run.py without it
runs TensorFlow's own GPU kernels, which this does not measure.
"""

import argparse
import gzip
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "tests", "fixtures", "tiny-vox")
# Weights up to this size travel as they are (biases, norms, the anti-alias kernel); larger
# ones as their statistics.
EXACT_SIZE = 100_000


def export_module(out, label, function, args, weights, exact=False, expected=None):
    """``function`` traced with XLA on ``args``: its HLO, inputs, captured weights (exactly or
    as statistics) and TensorFlow's outputs (+ ``expected``, name -> the original's)."""
    import tensorflow as tf

    xla = tf.function(function, jit_compile=True, autograph=False)
    outputs = xla(*args)
    names = sorted(outputs)
    hlo = xla.experimental_get_compiler_ir(*args)(stage="hlo_serialized")
    by_handle = {id(w.handle): w for w in weights}
    captured = [
        (by_handle[id(c)] if id(c) in by_handle else c).numpy()
        for c in xla.get_concrete_function(*args).captured_inputs
    ]
    parameters = [np.asarray(a) for a in args] + captured
    arrays = {"outputs": np.array(names)}
    stats = []
    for i, p in enumerate(parameters):
        stats.append([float(p.mean()), float(p.std()), float(p.min()), list(p.shape)])
        if exact or p.size <= EXACT_SIZE:
            arrays[f"parameter_{i}"] = p
    for i, name in enumerate(names):
        if exact:
            arrays[f"tensorflow_{i}"] = outputs[name].numpy()
        if expected and name in expected:
            arrays[f"original_{i}"] = expected[name]
    path = os.path.join(out, label)
    with open(path + ".hlo.gz", "wb") as f:
        f.write(gzip.compress(hlo, 9))
    with open(path + ".json", "w") as f:
        json.dump(stats, f)
    np.savez(path + ".npz", **arrays)
    print(f"{label}: {len(parameters)} parameters, outputs {', '.join(names)}", flush=True)


def per_frame_work(sig, keys):
    """What run.py does per batch of driving frames, as one function."""

    def per_frame(driving, kp_value, kp_jacobian, *features):
        kp_driving = sig.kp_detector(image=driving)
        kp_norm = sig.process_kp(
            kp_source_value=kp_value,
            kp_source_jacobian=kp_jacobian,
            kp_driving_value=kp_driving["value"],
            kp_driving_jacobian=kp_driving["jacobian"],
            kp_initial_value=kp_value,
            kp_initial_jacobian=kp_jacobian,
            use_relative_movement=1.0,
            use_relative_jacobian=1.0,
            adapt_movement_scale=1.0,
        )
        out = sig.animate_encoded(
            **dict(zip(keys, features)),
            kp_source_value=kp_value,
            kp_source_jacobian=kp_jacobian,
            kp_driving_value=kp_norm["value"],
            kp_driving_jacobian=kp_norm["jacobian"],
        )
        return {"prediction": out["prediction"]}

    return per_frame


def export_vox(out, batches, labels, workdir):
    """The full-size model's per-frame work with each set of faster convolutions."""
    from random_model import workdir_model

    from modules.layers import FAST_FORMS
    from modules.signatures import Signatures

    os.makedirs(workdir, exist_ok=True)
    model = workdir_model(workdir)
    rng = np.random.RandomState(0)
    source = rng.rand(1, 256, 256, 3).astype(np.float32)
    weights = model.keras_kp_detector.weights + model.keras_generator.weights
    forms = {"plain": (), **{form: (form,) for form in FAST_FORMS}, "all": FAST_FORMS}
    for label in labels:
        fast = forms[label]
        sig = Signatures(model.config, model.keras_kp_detector, model.keras_generator, fast=fast)
        kp_source = sig.kp_detector(image=source)
        encoded = sig.encode_source(source_image=source)
        per_frame = per_frame_work(sig, sorted(encoded))
        for batch in batches:
            driving = rng.rand(batch, 256, 256, 3).astype(np.float32)
            args = [driving, kp_source["value"], kp_source["jacobian"]]
            args += [encoded[k] for k in sorted(encoded)]
            export_module(out, f"vox-{label}-b{batch}", per_frame, args, weights)


def export_tiny(out):
    """tiny-vox's three stages as TensorFlow traces them on a GPU, with the original's
    outputs."""
    from modules.convert.model import load_model
    from modules.layers import GPU_FORMS
    from modules.signatures import Signatures

    ref = np.load(os.path.join(TINY, "reference.npz"))
    model = load_model(*(os.path.join(TINY, f) for f in ("config.yaml", "tiny-vox-cpk.pth.tar")))
    sig = Signatures(model.config, model.keras_kp_detector, model.keras_generator, fast=GPU_FORMS)
    weights = model.keras_kp_detector.weights + model.keras_generator.weights
    source = (ref["source_uint8"][None] / 255).astype(np.float32)
    driving = (ref["driving_uint8"] / 255).astype(np.float32)
    encoded = sig.encode_source(source_image=source)
    keys = sorted(encoded)

    def animate(value, jacobian, norm_value, norm_jacobian, *features):
        return sig.animate_encoded(
            **dict(zip(keys, features)),
            kp_source_value=value,
            kp_source_jacobian=jacobian,
            kp_driving_value=norm_value,
            kp_driving_jacobian=norm_jacobian,
        )

    stages = {
        "kp_detector": (
            lambda image: sig.kp_detector(image=image),
            [driving],
            {"value": ref["kp_driving_value"], "jacobian": ref["kp_driving_jacobian"]},
        ),
        "encode_source": (lambda image: sig.encode_source(source_image=image), [source], {}),
        "animate_encoded": (
            animate,
            [ref[f"kp_{k}"] for k in ("source_value", "source_jacobian")]
            + [ref[f"kp_norm_{k}_rel_adapt"] for k in ("value", "jacobian")]
            + [encoded[k].numpy() for k in keys],
            {
                "prediction": ref["prediction_rel_adapt"],
                "deformation": ref["deformation_rel_adapt"],
            },
        ),
    }
    for stage, (function, args, expected) in stages.items():
        export_module(out, f"tiny-{stage}", function, args, weights, True, expected)


def run(out, platform, repeats):
    import jax
    import jax.extend

    # JAX's own HLO -> StableHLO converter and client; internal modules (jax 0.11.2).
    from jax._src.lib import _jax, xla_client

    backend = jax.extend.backend.get_backend(platform)
    device = backend.devices()[0]
    print(f"{platform}: {device.device_kind}, jax {jax.__version__}", flush=True)
    for name in sorted(n[: -len(".hlo.gz")] for n in os.listdir(out) if n.endswith(".hlo.gz")):
        path = os.path.join(out, name)
        with open(path + ".hlo.gz", "rb") as f:
            module = _jax.mlir.hlo_to_stablehlo(gzip.decompress(f.read()))
        with open(path + ".json") as f:
            stats = json.load(f)
        data = np.load(path + ".npz")
        rng = np.random.RandomState(0)
        parameters = []
        for i, (mean, std, low, shape) in enumerate(stats):
            if f"parameter_{i}" in data.files:
                parameters.append(data[f"parameter_{i}"])
            else:
                p = (mean + std * rng.standard_normal(shape)).astype(np.float32)
                parameters.append(np.abs(p) if low >= 0 else p)
        start = time.perf_counter()
        executable = backend.compile_and_load(
            module, xla_client.DeviceList((device,)), xla_client.CompileOptions()
        )
        compiled = time.perf_counter() - start
        buffers = [jax.device_put(p, device) for p in parameters]
        outputs = [np.asarray(o) for o in executable.execute(buffers)]
        line = f"{name}: compiled in {compiled:.1f} s"
        if name.startswith("vox-"):
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                np.asarray(executable.execute(buffers)[0])
                times.append(time.perf_counter() - start)
            frames = parameters[0].shape[0]
            best, median = min(times), sorted(times)[len(times) // 2]
            line += f", {frames / best:.0f} frames/s best, {frames / median:.0f} median"
            line += f" ({best * 1e3:.2f} ms per batch of {frames})"
        for i, output in enumerate(data["outputs"]):
            differences = [
                f"{np.abs(outputs[i] - data[f'{key}_{i}']).max():.1e} from {source}"
                for key, source in (("tensorflow", "TensorFlow"), ("original", "the original"))
                if f"{key}_{i}" in data.files
            ]
            if differences:
                line += f"; {output}: {', '.join(differences)}"
        print(line, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export_parser = commands.add_parser("export")
    export_parser.add_argument("out")
    export_parser.add_argument("--batch", default="8", help="batch sizes, comma-separated")
    export_parser.add_argument(
        "--forms",
        default="plain,subpixel,space_to_depth,winograd,all",
        help="which convolutions to trace, comma-separated",
    )
    export_parser.add_argument(
        "--workdir",
        default=os.path.join(tempfile.gettempdir(), "fomm-bench"),
        help="keeps the random model's weights (as bench.py --workdir does)",
    )
    run_parser = commands.add_parser("run")
    run_parser.add_argument("out")
    run_parser.add_argument("--platform", default="gpu")
    run_parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    if args.command == "export":
        sys.path.insert(0, ROOT)
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        os.makedirs(args.out, exist_ok=True)
        batches = [int(b) for b in args.batch.split(",")]
        export_vox(args.out, batches, args.forms.split(","), args.workdir)
        export_tiny(args.out)
    else:
        run(args.out, args.platform, args.repeats)


if __name__ == "__main__":
    main()
