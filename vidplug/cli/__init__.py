"""The ``vidplug`` command line. Each subcommand lives in its own module here and only parses arguments and calls
library functions; this module wires them together and turns :class:`~vidplug.errors.VidplugError` into a one-line
message and exit code 2 (a traceback only with ``--debug``)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from vidplug.errors import VidplugError

# subcommand name -> module in vidplug.cli defining ``register(subparsers)``; the module sets ``func`` on its parser.
SUBCOMMANDS = {
    "demo": "demo",
    "restore": "restore",
    "degrade": "degrade",
    "metrics": "metrics",
    "eval": "evaluate",
    "ablate": "ablate",
    "robustness": "robustness",
    "train-prior": "train_prior",
    "weights": "weights",
    "view": "view",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidplug", description="Zero-shot video restoration with image diffusion priors.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMANDS.values():
        try:
            module = importlib.import_module(f"vidplug.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"vidplug.cli.{module_name}":
                continue  # subcommand not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except VidplugError as exc:
        if args.debug:
            raise
        print(f"vidplug {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"vidplug {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
