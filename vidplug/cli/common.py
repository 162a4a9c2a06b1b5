"""Argument groups shared by several subcommands (one definition each)."""

from __future__ import annotations

import argparse
import typing
from collections.abc import Callable, Iterable

from vidplug.config import Method, RestoreConfig, load_config

NOISE_HELP = ("measurement noise: gaussian | impulse | shot | speckle, LEVEL low | high | a number, e.g. impulse:high, "
              "gaussian:0.05; a bare number is Gaussian sigma on the [-1,1] scale")


def add_read_args(p: argparse.ArgumentParser, defaults: dict | None = None) -> None:
    """The frame-selection flags; each is a shortcut for one ``read.`` config key (``defaults``: this command's
    own defaults, shown in the help; a config file or --set can still change them)."""
    d = {**_READ_DEFAULTS, **(defaults or {})}
    g = p.add_argument_group("frame selection (shortcuts for the config's read: section)")
    g.add_argument("--start", type=int, default=None, help=f"first frame index (default {d['start']})")
    g.add_argument("--end", type=int, default=None, help="stop before this frame index")
    g.add_argument("--stride", type=int, default=None, help=f"take every N-th frame (default {d['stride']})")
    g.add_argument("--max-frames", type=int, default=None,
                   help="at most N frames" + (f" (default {d['max_frames']})" if d["max_frames"] else ""))
    g.add_argument("--size", type=_size, default=None,
                   help="center-crop + resize to S or HxW (e.g. 256 or 240x432); 'native' keeps the frame size"
                        + (f" (default {d['size']})" if d["size"] else ""))
    p.set_defaults(read_defaults=d)


_READ_DEFAULTS = {"start": 0, "end": None, "stride": 1, "max_frames": None, "size": None}
_READ_FLAGS = ("start", "end", "stride", "max_frames", "size")


def read_flags(args: argparse.Namespace) -> dict:
    """The frame-selection flags given on the command line, by ``read.`` config key."""
    return {f"read.{k}": getattr(args, k) for k in _READ_FLAGS if getattr(args, k, None) is not None}


def command_read_defaults(args: argparse.Namespace) -> dict:
    """This command's own frame-selection defaults (e.g. ``eval``'s size 256), as a ``read:`` section."""
    return {k: v for k, v in getattr(args, "read_defaults", {}).items() if v is not None}


def read_kwargs(args: argparse.Namespace) -> dict:
    """Reader keyword arguments for commands without a run config (``metrics``, ``degrade``): the command's
    defaults <- flags, checked as the config's ``read:`` section."""
    return RestoreConfig().with_read({**command_read_defaults(args), **{k.split(".", 1)[1]: v
                                                                         for k, v in read_flags(args).items()}}
                                     ).read.kwargs()


def comma_names(known: Iterable[str] | None = None, example: str = "a,b") -> Callable[[str], list[str]]:
    """An argparse ``type=`` for a comma-separated list: refuses an empty list and, when ``known`` is given, names
    outside it (one line that names the accepted ones)."""
    choices = None if known is None else list(known)

    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names:
            raise argparse.ArgumentTypeError(f"give comma-separated names, e.g. {example}")
        bad = [n for n in names if choices is not None and n not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown name(s) {', '.join(bad)}; choose from {', '.join(choices)}")
        return names

    return parse


def _size(text: str):
    if text.strip().lower() == "native":
        return "native"
    try:
        if "x" in text:
            h, w = text.lower().split("x")
            return [int(h), int(w)]
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be S or HxW (e.g. 256 or 240x432), got '{text}'") from None


def add_config_args(p: argparse.ArgumentParser) -> None:
    """The settings every restoration-type command takes; each flag is a shortcut for one config key."""
    g = p.add_argument_group("settings (flags override --config; --set overrides both)")
    g.add_argument("--config", default=None, help="YAML config file (see configs/)")
    g.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override, e.g. --set solver.lr=0.005 (repeatable)")
    g.add_argument("--task", default=None, help="sr4 | sr | inpaint | temporal | deblur | temporal+deblur")
    g.add_argument("--prior", default=None, help="tiny | adm-imagenet256 | adm-ffhq256 | hub id | directory | .pt; "
                   "configs/priors/NAME.yaml, when present, sets its recommended solver settings")
    g.add_argument("--method", default=None, choices=typing.get_args(Method),
                   help="dmplug, the bicubic/pseudo-inverse baseline, or per-frame DiffPIR")
    g.add_argument("--iters", type=int, default=None, help="maximum iterations per chunk")
    g.add_argument("--lr", type=float, default=None, help="learning rate on the seeds")
    g.add_argument("--optimizer", default=None, choices=["adam", "lbfgs"])
    g.add_argument("--seed", type=int, default=None, help="seed of the initial diffusion seeds and of the operator")
    g.add_argument("--noise", default=None, metavar="TYPE[:LEVEL]", help=NOISE_HELP + " (simulations only)")
    g.add_argument("--semantic-weight", type=float, default=None, help="CLIP consistency weight (0 = off)")
    g.add_argument("--pixel-weight", type=float, default=None, help="flow-warping consistency weight (0 = off)")
    g.add_argument("--chunk", type=int, default=None, help="frames optimised jointly (0 = auto)")
    g.add_argument("--overlap", type=int, default=None, help="frames shared by consecutive chunks")
    g.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N")


# flag -> config key
_FLAG_KEYS = {
    "task": "task.name", "prior": "prior.name", "method": "method", "iters": "solver.iters", "lr": "solver.lr",
    "optimizer": "solver.optimizer", "noise": "task.noise", "semantic_weight": "consistency.semantic_weight",
    "pixel_weight": "consistency.pixel_weight", "chunk": "chunk.size", "overlap": "chunk.overlap", "device": "device",
}


def config_from_args(args: argparse.Namespace, base: RestoreConfig | None = None) -> RestoreConfig:
    """Defaults (``base``, with the command's own frame-selection defaults) <- the prior's recommended settings <-
    --config YAML <- explicit flags (the frame-selection flags included) <- --set overrides."""
    read = command_read_defaults(args)
    if read:
        base = (base or RestoreConfig()).with_read(read)
    flags = {key: getattr(args, flag) for flag, key in _FLAG_KEYS.items() if getattr(args, flag, None) is not None}
    flags.update(read_flags(args))
    if getattr(args, "seed", None) is not None:
        flags.update({"seed": args.seed, "task.seed": args.seed})
    return load_config(args.config, list(args.overrides), base=base, flags=flags)
