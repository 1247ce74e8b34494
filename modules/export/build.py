"""Builds the SavedModels and TF Lite models (and ONNX / TF.js models) of a checkpoint.

    python build.py --model vox
writes saved_models/vox/{kp_detector,process_kp,generator}/ and
tflite/vox/{kp_detector,process_kp,generator}.tflite (+ tflite/vox/OPS.md);
--onnx adds onnx/vox/*.onnx, --tfjs adds tfjs/vox/{kp_detector,process_kp,generator,...}/.
Each output folder gets manifest.json, the SHA-256 of every file written there, which the
scripts and the web page check before they load a model (docs/manifest.md).
"""

import os
import time

from .. import extras
from ..app import cli, interrupt
from ..errors import UsageError
from .contract import (
    MODULE_NAMES,
    ONNX_WEB_KINDS,
    PRECISIONS,
    QUANTIZATIONS,
    build_name,
    onnx_dir,
    saved_model_dir,
    signature_stems,
    tfjs_dir,
    tflite_dir,
    tflite_path,
)


def output_folders():
    """(flag, default folder, what goes there) of each output folder."""
    return (
        ("saved_models", cli.saved_models_dir(), "SavedModels"),
        ("tflite", cli.tflite_dir(), "TF Lite models"),
        ("onnx_dir", cli.onnx_dir(), "ONNX models"),
        ("tfjs_dir", cli.tfjs_dir(), "TF.js models"),
        ("web_models", cli.web_models_dir(), "the web page's models"),
    )


def parse(argv, prog="build.py"):
    parser = cli.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model",
        default="vox",
        help="model NAME: config/NAME-256.yaml + checkpoint/NAME-cpk.pth.tar (default: vox)",
    )
    parser.add_argument("--config", help="config file (NAME then only names the outputs)")
    parser.add_argument("--checkpoint", help="checkpoint file (NAME then only names the outputs)")
    parser.add_argument(
        "-a",
        "--all",
        action="store_true",
        help="build every model in config/ that has a checkpoint in checkpoint/",
    )
    parser.add_argument("--module", choices=MODULE_NAMES, help="build only this one")
    parser.add_argument("--nolite", action="store_true", help="skip the TF Lite models")
    parser.add_argument(
        "--quantize",
        choices=QUANTIZATIONS,
        help="write quantized TF Lite models to tflite/NAME-MODE/ instead "
        "(the generator is quantized; SavedModels are not rebuilt)",
    )
    add_mobile_flags(parser)
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="bfloat16: SavedModels whose per-frame generator convolutions run in bfloat16, "
        "in saved_models/NAME-bfloat16/ for test.py --precision bfloat16 (no TF Lite models)",
    )
    parser.add_argument(
        "--savedmodel_device",
        choices=("cpu", "gpu"),
        help="the kind of device the SavedModels are traced for (default: this machine's); "
        "gpu leaves out the Winograd bottleneck, which is slow on GPUs",
    )
    parser.add_argument(
        "--loadwithtorch",
        action="store_true",
        help="read the checkpoint with torch.load instead of the built-in reader",
    )
    parser.add_argument(
        "--onnx",
        action="store_true",
        help="also write ONNX models to onnx/NAME/ (tf2onnx, float32)",
    )
    parser.add_argument(
        "--tfjs",
        action="store_true",
        help="also write TF.js graph models to tfjs/NAME/ (converter in .venv-tfjs/, float32)",
    )
    parser.add_argument(
        "--web",
        action="store_true",
        help="also write the web page's models (ONNX, float32 weights) to web/models/NAME/",
    )
    parser.add_argument(
        "--web_float16",
        action="store_true",
        help="also write the web page's models with float16 weights to web/models/NAME-float16/",
    )
    parser.add_argument(
        "--web_int8",
        action="store_true",
        help="also write the web page's models with int8 generator convolutions to "
        "web/models/NAME-int8/",
    )
    parser.add_argument(
        "--web_litert",
        action="store_true",
        help="also write the web page's fastest models, for LiteRT.js (TF Lite, batch 1, "
        "float32) to web/models/NAME-litert/",
    )
    # Output folders: flag -> (default, what goes there).
    for flag, default, what in output_folders():
        parser.add_argument(
            f"--{flag}",
            default=default,
            metavar="DIR",
            help=f"where {what} go (default: {os.path.relpath(default, cli.home())}/)",
        )
    args = parser.parse_args(argv)
    if args.all and (args.config or args.checkpoint):
        raise UsageError(
            "--all builds every config in config/; it does not take --config or --checkpoint"
        )
    if args.quantize and args.nolite:
        raise UsageError("--quantize makes TF Lite models; it does not go with --nolite")
    check_mobile_flags(args)
    if args.precision != "float32" and (args.quantize or args.mobile):
        raise UsageError(
            "--precision bfloat16 makes SavedModels; it does not go with --quantize, "
            "--static_batch, --prediction_only or --hardcode"
        )
    if args.savedmodel_device and (args.quantize or args.mobile):
        raise UsageError(
            "--savedmodel_device is for SavedModels; it does not go with --quantize, "
            "--static_batch, --prediction_only or --hardcode (TF Lite builds)"
        )
    if args.precision != "float32" and (args.onnx or args.tfjs):
        raise UsageError(
            "--precision bfloat16 makes SavedModels; it does not go with --onnx or --tfjs"
        )
    if args.precision != "float32" and web_kinds(args):
        raise UsageError("--precision bfloat16 makes SavedModels; it does not go with --web")
    if args.tfjs:
        from .tfjs import converter_python

        converter_python()  # before any model loads: says how to install the converter
    if args.module and web_kinds(args):
        raise UsageError("the web page needs all three models; --web does not go with --module")
    return args


def add_mobile_flags(parser):
    """Mobile-ready TF Lite builds (after the earlier TF port's --staticbatchsize,
    --predictiononly and --hardcode)."""
    parser.add_argument(
        "--static_batch",
        type=int,
        metavar="N",
        help="TF Lite models with static input shapes: batch N (the source is tiled to N)",
    )
    parser.add_argument(
        "--prediction_only",
        action="store_true",
        help="the generator's only output is 'prediction'",
    )
    parser.add_argument(
        "--hardcode",
        metavar="RELATIVE,ADAPT",
        help="fix process_kp's flags at build time (0 or 1 each, e.g. 1,1 for "
        "--relative --adapt_scale); they are then no inputs",
    )


def check_mobile_flags(args):
    """Checks the mobile flags; --hardcode becomes (RELATIVE, ADAPT) ints."""
    args.mobile = bool(args.static_batch or args.prediction_only or args.hardcode)
    if args.static_batch is not None and args.static_batch < 1:
        raise UsageError(f"--static_batch must be at least 1, got {args.static_batch}")
    if args.mobile and args.nolite:
        raise UsageError(
            "--static_batch, --prediction_only and --hardcode make TF Lite models; "
            "they do not go with --nolite"
        )
    if args.hardcode is not None:
        values = args.hardcode.split(",")
        if len(values) != 2 or any(v not in ("0", "1") for v in values):
            raise UsageError(
                f"--hardcode takes RELATIVE,ADAPT, each 0 or 1 (e.g. 1,1), got '{args.hardcode}'"
            )
        args.hardcode = tuple(int(v) for v in values)


def check(args, found):
    """Every input and output folder, before TensorFlow loads."""
    from ..convert.checkpoint import check_checkpoint_file
    from ..convert.config import load_config

    for _, config, checkpoint in found:
        load_config(config)
        check_checkpoint_file(checkpoint)
    # The onnx extra's packages, before hours of building find them missing.
    onnx_web = set(web_kinds(args)) & set(ONNX_WEB_KINDS)
    if args.onnx or onnx_web:
        extras.check("tf2onnx", "onnx", "ONNX export (build.py --onnx, --web)")
    if onnx_web:
        extras.check("onnx", "onnx", "the web page's models (build.py --web)")
    if args.web_int8:
        extras.check("onnxruntime", "onnx", "build.py --web_int8")
    for flag, _, _ in output_folders():
        folder = getattr(args, flag)
        cli.check_folder(folder, f"--{flag} {folder}")


def targets(args):
    """(name, config path, checkpoint path) of every model to build."""
    if args.all:
        found = [
            (name, cli.config_path(name), cli.checkpoint_path(name, required=False))
            for name in cli.model_names()
        ]
        found = [t for t in found if t[2] is not None]
        if not found:
            raise UsageError(
                f"--all found no checkpoint in checkpoint/ for any config ({cli.DOWNLOAD_HINT})"
            )
        return found
    config = args.config or cli.config_path(args.model)
    checkpoint = args.checkpoint or cli.checkpoint_path(args.model)
    return [(args.model, config, checkpoint)]


class Steps:
    """Prints each step and how long it took."""

    def __init__(self, name):
        self.name = name

    def run(self, what, fn, *args):
        print(f"[{self.name}] {what} ...", end="", flush=True)
        start = time.perf_counter()
        with cli.quiet():
            result = fn(*args)
        # The TF Lite converter runs the Ctrl-C handler but drops its exception: stop here.
        interrupt.check()
        print(f" {time.perf_counter() - start:.1f} s", flush=True)
        return result


def build(args, name, config, checkpoint):
    cli.import_tensorflow()
    from .. import load_model
    from ..atomic import write_file
    from ..export import manifest, onnx, savedmodel

    steps = Steps(name)
    precision = None if args.precision == "float32" else args.precision
    model = steps.run(
        f"loading {checkpoint} with {config}",
        load_model,
        config,
        checkpoint,
        args.loadwithtorch,
        precision,
    )
    # Each target gets the faster convolutions it runs well (layers.FAST_FORMS): the
    # SavedModels model.signatures (or those of --savedmodel_device), TF Lite
    # model.tflite_signatures (or the mobile build's), ONNX and TF.js
    # model.portable_signatures. Each is made (and traced) only when used.
    lite = None
    if args.mobile:
        from ..signatures import hardcoded_flags

        lite = model.mobile_signatures(
            static_batch=args.static_batch,
            prediction_only=args.prediction_only,
            hardcode=hardcoded_flags(*args.hardcode) if args.hardcode else None,
        )
    modules = [args.module] if args.module else list(MODULE_NAMES)
    if not (args.quantize or args.mobile):
        saved = model.signatures
        if args.savedmodel_device:
            saved = model.device_signatures(args.savedmodel_device)
        for module in modules:
            directory = saved_model_dir(args.saved_models, build_name(name, precision), module)
            steps.run(
                f"SavedModel {os.path.relpath(directory)}",
                savedmodel.save_saved_model,
                saved,
                module,
                directory,
            )
            manifest.update(os.path.dirname(directory), [module])
    if args.onnx:
        folder = onnx_dir(args.onnx_dir, name)
        for module in modules:
            # Every signature of a module is converted before any file is written.
            files = steps.run(
                f"ONNX {os.path.relpath(folder)}/{module}*.onnx",
                onnx.onnx_files,
                model.portable_signatures,
                module,
                folder,
            )
            for path, data in files:
                write_file(path, data)
            manifest.update(folder, [os.path.basename(path) for path, _ in files])
    if args.tfjs:
        from ..export import tfjs

        steps.run(
            f"TF.js {os.path.relpath(tfjs_dir(args.tfjs_dir, name))}/{{{','.join(modules)}}}*/",
            tfjs.convert_tfjs,
            model.portable_signatures,
            modules,
            args.tfjs_dir,
            name,
        )
        stems = [stem for module in modules for stem in signature_stems(module).values()]
        manifest.update(tfjs_dir(args.tfjs_dir, name), stems)
    if kinds := web_kinds(args):
        build_web(steps, model, args.web_models, name, kinds)
    if not (args.nolite or precision):
        build_tflite(args, name, lite or model.tflite_signatures, modules, steps)


def build_tflite(args, name, signatures, modules, steps):
    from ..atomic import write_file
    from ..export import manifest, tflite

    folder = tflite_dir(args.tflite, name, args.quantize)
    for module in modules:
        path = tflite_path(folder, module)
        flatbuffer = steps.run(
            f"TF Lite {os.path.relpath(path)}",
            tflite.convert_tflite,
            signatures,
            module,
            args.quantize,
        )
        write_file(path, flatbuffer)
        print(f"[{name}]   {len(flatbuffer) / 2**20:.1f} MiB", flush=True)
    write_file(os.path.join(folder, "OPS.md"), tflite.ops_report(folder))
    parts = [os.path.basename(tflite_path(folder, module)) for module in modules]
    manifest.update(folder, [*parts, "OPS.md"])


def web_kinds(args):
    """The web models to build: float32, float16, int8 (ONNX), litert (LiteRT.js)."""
    flags = ("web", "web_float16", "web_int8", "web_litert")
    kinds = (*ONNX_WEB_KINDS, "litert")
    return [kind for flag, kind in zip(flags, kinds) if getattr(args, flag)]


def build_web(steps, model, root, name, weights):
    from ..export import manifest, web

    folders = ", ".join(
        os.path.relpath(os.path.join(root, build_name(name, None if w == "float32" else w)))
        for w in weights
    )
    written = steps.run(
        f"web page models {folders}", web.write_web_models, model, root, name, weights
    )
    for folder, size in written:
        manifest.update(folder)  # the folder was replaced whole
        print(f"[{name}]   {os.path.basename(folder)}: {size / 2**20:.1f} MiB", flush=True)
    build_web_faces(steps, root)


def build_web_faces(steps, root):
    """The page's face detector (web/models/mtcnn/), when the faces extra is installed."""
    from ..export import manifest, web_faces

    if not web_faces.available():
        print(f"[{steps.name}] note: {web_faces.missing_message()}", flush=True)
        return
    folder, size = steps.run(
        f"web page face detector {os.path.relpath(os.path.join(root, web_faces.FOLDER))}",
        web_faces.write_face_models,
        root,
    )
    manifest.update(folder)
    print(f"[{steps.name}]   {os.path.basename(folder)}: {size / 2**20:.1f} MiB", flush=True)


@cli.main_guard
def main(argv=None, prog="build.py"):
    args = parse(argv, prog)
    start = time.perf_counter()
    found = targets(args)
    check(args, found)
    for name, config, checkpoint in found:
        build(args, name, config, checkpoint)
    print(f"done in {time.perf_counter() - start:.1f} s")
