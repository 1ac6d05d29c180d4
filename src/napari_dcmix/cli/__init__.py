"""The ``napari-dcmix`` command line: one module per subcommand, each calling the core."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

# (subcommand, module, one-line help); each module has add_arguments(parser) and run(args) -> int.
SUBCOMMANDS: list[tuple[str, str, str]] = [
    ("demo", "demo", "open napari with the sample plate, the DCMIX widget and the default model"),
    ("info", "info", "describe a plate (layout, wells, sites, channels, pixel size...) or a model"),
    ("synth", "synth", "write a synthetic plate with a known phenotype channel"),
    ("train", "train", "train or fine-tune a DCMIX model on labelled wells"),
    ("predict", "predict", "predict plates with a model and write a CSV"),
    ("importance", "importance", "print a model's channel importance"),
    ("report", "report", "write a self-contained HTML report of a model and its predictions"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-dcmix",
        description="DCMIX channel importance for high content screening plates.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name, help_text in SUBCOMMANDS:
        module = importlib.import_module(f"napari_dcmix.cli.{module_name}")
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _os_error_text(exc: OSError) -> str:
    """``<path>: <reason>`` for an OSError (both paths of a failed rename/copy)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
    return f"{' -> '.join(paths)}: {reason}" if paths else reason


def _show_plate_warnings(command: str):
    """A ``warnings.showwarning`` that prints our warnings (skipped sites, missing wells...) as
    one line each, ``napari-dcmix CMD: warning: ...``, without a source location."""
    from napari_dcmix.errors import PlateWarning

    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, PlateWarning):
            print(f"napari-dcmix {command}: warning: {message}", file=sys.stderr, flush=True)
        else:
            previous(message, category, filename, lineno, file, line)

    return show


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_plate_warnings(args.command)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from napari_dcmix.errors import DcmixError

    try:
        return int(args._run(args) or 0)
    except DcmixError as exc:
        print(f"napari-dcmix {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unreadable input, unwritable output, full disk...
        print(f"napari-dcmix {args.command}: error: {_os_error_text(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"napari-dcmix {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
