"""The programs behind the top-level scripts and the console scripts of the installed package
(``fomm-run``, ``fomm-test``, ``fomm-testlite``, ``fomm-build``, ``fomm-crop``,
``fomm-live``, ``fomm-serve``): one ``main`` each, guarded so that bad input is one line and a
signal a clean exit."""

from . import animate, backends, cli, clips


@cli.main_guard
def run_main(argv=None, prog="run.py"):
    return animate.main(backends.Keras(), argv, prog)


@cli.main_guard
def test_main(argv=None, prog="test.py"):
    return animate.main(backends.SavedModel(), argv, prog)


@cli.main_guard
def testlite_main(argv=None, prog="testlite.py"):
    return animate.main(backends.Lite(), argv, prog)


@cli.main_guard
def live_main(argv=None, prog="live.py"):
    from .live.command import main

    return main(argv, prog)


@cli.main_guard
def crop_main(argv=None, prog="crop.py"):
    return clips.main(prog, clips.DESCRIPTION, argv)


@cli.main_guard
def serve_main(argv=None, prog="serve.py"):
    from .serve.command import main

    return main(argv, prog)


def build_main(argv=None, prog="build.py"):
    from ..export.build import main

    return main(argv, prog)


def console(main, prog):
    """The entry point of a console script: ``main`` with its name, ended as a script."""
    return lambda: cli.exit_fast(lambda: main(None, prog))


fomm_run = console(run_main, "fomm-run")
fomm_test = console(test_main, "fomm-test")
fomm_testlite = console(testlite_main, "fomm-testlite")
fomm_build = console(build_main, "fomm-build")
fomm_crop = console(crop_main, "fomm-crop")
fomm_live = console(live_main, "fomm-live")
fomm_serve = console(serve_main, "fomm-serve")
