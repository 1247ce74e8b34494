"""Where the three models come from: the one thing that differs between run.py (Keras models
from a config and a checkpoint), test.py (SavedModels) and testlite.py (TF Lite models).

A backend adds its flags to the scripts' parser (``add_flags``), checks its model files
before TensorFlow is imported (``check``) and loads the models (``load``) as a model source
(modules/app/sources.py). The scripts and ``Animator`` (modules/animator.py) share them.
"""

import os

from ..export.contract import QUANTIZATIONS, build_hint, build_name, saved_model_dir, tflite_dir
from . import animate, cli

# test.py's and testlite.py's answer to run.py's --config
MODE_CONFIG_HINT = (
    "the models come built (build.py takes --config); the dataset modes' config is --mode_config"
)


class Backend:
    """The protocol: ``name`` (the script), ``doc`` (its one-line description),
    ``tensorflow`` (whether it needs TensorFlow imported before it loads)."""

    name = ""
    doc = ""
    tensorflow = True

    def add_flags(self, parser):
        """Adds this backend's flags to the scripts' parser (a group of its own)."""

    def check(self, args):
        """Checks the model files named by ``args``; raises a FommError before TensorFlow."""

    def load(self, args):
        """The model source (kp_detector, process_kp, encode_source, animate_encoded)."""
        raise NotImplementedError


class Keras(Backend):
    name = "run.py"
    doc = (
        "Animates a source image with a driving video using the Keras models, built from the "
        "config and loaded from the original's checkpoint."
    )

    def add_flags(self, parser):
        group = parser.add_argument_group("model (Keras, from the original's checkpoint)")
        group.add_argument(
            "--config",
            "--config_path",
            dest="config",
            metavar="PATH",
            help="config file (default: config/NAME-256.yaml)",
        )
        group.add_argument(
            "--checkpoint",
            "--checkpoint_path",
            dest="checkpoint",
            metavar="PATH",
            help="checkpoint (default: checkpoint/NAME-cpk.pth.tar or NAME.pth.tar)",
        )
        group.add_argument(
            "--loadwithtorch",
            action="store_true",
            help="read the checkpoint with torch.load instead of the built-in reader",
        )
        animate.add_precision_flag(group)
        self.reading = None

    def check(self, args):
        """Checks the config and checkpoint, then starts reading the checkpoint in a thread:
        it overlaps the TensorFlow import that follows (about 0.5 s of a short run)."""
        from concurrent.futures import ThreadPoolExecutor

        from ..convert.checkpoint import check_checkpoint_file, read_state_dicts
        from ..convert.config import load_config

        load_config(args.config or cli.config_path(args.model))
        path = args.checkpoint or cli.checkpoint_path(args.model)
        check_checkpoint_file(path)
        self.reading = None
        if not args.loadwithtorch:
            reader = ThreadPoolExecutor(max_workers=1)
            self.reading = reader.submit(read_state_dicts, path)
            reader.shutdown(wait=False)  # its one thread ends with the read

    def load(self, args):
        reading, self.reading = getattr(self, "reading", None), None
        return self.models(
            args.config or cli.config_path(args.model),
            args.checkpoint or cli.checkpoint_path(args.model),
            use_torch=args.loadwithtorch,
            precision=args.precision,
            state_dicts=reading.result() if reading else None,
        )

    @staticmethod
    def models(config, checkpoint, use_torch=False, precision="float32", state_dicts=None):
        """The Keras models of ``config`` with the weights of ``checkpoint``, as run.py runs
        them: TensorFlow's graph optimizer off on a CPU (modules/runtime.py), the per-frame
        signature traced in the background."""
        from ..convert.model import load_model
        from ..runtime import skip_graph_optimizer

        skip_graph_optimizer()
        model = load_model(
            config, checkpoint, use_torch=use_torch, precision=precision, state_dicts=state_dicts
        )
        model.trace_in_background()
        return model


class SavedModel(Backend):
    name = "test.py"
    doc = (
        "Animates a source image with a driving video using the SavedModels that build.py "
        "wrote (saved_models/NAME/)."
    )

    def add_flags(self, parser):
        group = parser.add_argument_group("model (SavedModels from build.py)")
        animate.add_mode_config_flag(group)
        parser.hints["--config"] = MODE_CONFIG_HINT
        group.add_argument(
            "--saved_models",
            default=cli.saved_models_dir(),
            metavar="DIR",
            help="where build.py wrote the SavedModels (default: saved_models/)",
        )
        animate.add_precision_flag(group)

    @staticmethod
    def precision(args):
        return None if args.precision == "float32" else args.precision

    def hint(self, args):
        return build_hint(args.model, precision=self.precision(args))

    def folder(self, args):
        """saved_models/NAME/, or saved_models/NAME-bfloat16/ for --precision bfloat16."""
        name = build_name(args.model, self.precision(args))
        folder = saved_model_dir(args.saved_models, name)
        return animate.model_folder(folder, args.model, "SavedModels", self.hint(args))

    def check(self, args):
        self.checked = self.verify(self.folder(args), self.hint(args))

    def load(self, args):
        folder = self.folder(args)
        checked = getattr(self, "checked", None) == folder  # the dataset modes skip check()
        return self.models(folder, self.hint(args), verified=checked)

    @staticmethod
    def verify(folder, hint):
        """Checks that ``folder`` holds the three SavedModels and that every file of each
        matches build.py's manifest (a SavedModel is a program: none loads unchecked);
        returns ``folder``. Needs no TensorFlow."""
        from ..export.manifest import verify
        from .sources import saved_model_paths

        paths = saved_model_paths(folder, hint)
        verify(folder, list(paths), hint)
        return folder

    @classmethod
    def models(cls, folder, hint, verified=False):
        """build.py's SavedModels in ``folder``, checked (unless ``verified`` already) and
        loaded as test.py runs them (graph optimizer off on a CPU); ``hint``: the build
        command that error messages give."""
        from ..runtime import skip_graph_optimizer
        from .sources import SavedModels

        if not verified:
            cls.verify(folder, hint)
        skip_graph_optimizer()
        return SavedModels(folder, hint)


class Lite(Backend):
    name = "testlite.py"
    doc = (
        "Animates a source image with a driving video using the TF Lite models that build.py "
        "wrote (tflite/NAME/, or tflite/NAME-float16/ and tflite/NAME-dynamic/ with "
        "--quantize), on LiteRT."
    )
    # LiteRT needs no TensorFlow: about 3 s of start-up saved unless a step needs it.
    tensorflow = False

    def add_flags(self, parser):
        group = parser.add_argument_group("model (TF Lite models from build.py, on LiteRT)")
        animate.add_mode_config_flag(group)
        parser.hints["--config"] = MODE_CONFIG_HINT
        group.add_argument(
            "--tflite",
            default=cli.tflite_dir(),
            metavar="DIR",
            help="where build.py wrote the TF Lite models (default: tflite/)",
        )
        group.add_argument(
            "--quantize",
            choices=QUANTIZATIONS,
            help="use the quantized models of build.py --quantize MODE",
        )
        group.add_argument(
            "--threads",
            type=int,
            default=None,
            metavar="N",
            help="LiteRT threads (default: one per core)",
        )
        group.add_argument(
            "--weight_cache",
            metavar="DIR",
            help="keep XNNPACK's packed weights here between runs, about the models' size "
            "(default: $XDG_CACHE_HOME/fomm-tf/xnnpack, or ~/.cache/fomm-tf/xnnpack)",
        )
        group.add_argument(
            "--no_weight_cache",
            action="store_true",
            help="pack the weights in memory on every run instead",
        )

    def folder(self, args):
        folder = tflite_dir(args.tflite, args.model, args.quantize)
        hint = build_hint(args.model, args.quantize)
        return animate.model_folder(folder, args.model, "TF Lite models", hint)

    def check(self, args):
        self.checked = self.verify(self.folder(args), build_hint(args.model, args.quantize))
        if args.weight_cache and not args.no_weight_cache:  # the default falls back to memory
            cli.check_folder(args.weight_cache, args.weight_cache)

    def load(self, args):
        folder, hint = self.folder(args), build_hint(args.model, args.quantize)
        cache = not args.no_weight_cache and (args.weight_cache or True)
        checked = getattr(self, "checked", None) == folder  # the dataset modes skip check()
        return self.models(folder, hint, args.threads, cache, verified=checked)

    @staticmethod
    def verify(folder, hint):
        """Checks that ``folder`` holds the three TF Lite models and that they match
        build.py's manifest; returns ``folder``."""
        from ..export.manifest import verify
        from .sources import tflite_paths

        paths = tflite_paths(folder, hint)
        verify(folder, [os.path.basename(path) for path in paths.values()], hint)
        return folder

    @classmethod
    def models(cls, folder, hint, threads=None, weight_cache=True, verified=False):
        """build.py's TF Lite models in ``folder``, checked (unless ``verified`` already)
        and run on LiteRT as testlite.py runs them; ``weight_cache``: True (the default
        folder), a folder, or False (pack in memory)."""
        from .sources import LiteModels
        from .weight_cache import WeightCache

        if not verified:
            cls.verify(folder, hint)
        cache = None
        if weight_cache:
            cache = WeightCache(None if weight_cache is True else weight_cache)
        return LiteModels(folder, hint, num_threads=threads, weight_cache=cache)
