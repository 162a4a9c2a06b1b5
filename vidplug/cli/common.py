"""Argument groups shared by several subcommands (one definition each)."""

from __future__ import annotations

import argparse
import typing

from vidplug.config import Method, RestoreConfig, load_config

NOISE_HELP = ("measurement noise: gaussian | impulse | shot | speckle, LEVEL low | high | a number, e.g. impulse:high, "
              "gaussian:0.05; a bare number is Gaussian sigma on the [-1,1] scale")


def add_read_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("frame selection")
    g.add_argument("--start", type=int, default=0, help="first frame index")
    g.add_argument("--end", type=int, default=None, help="stop before this frame index")
    g.add_argument("--stride", type=int, default=1, help="take every N-th frame")
    g.add_argument("--max-frames", type=int, default=None, help="at most N frames")
    g.add_argument("--size", type=_size, default=None,
                   help="center-crop + resize to S or HxW (e.g. 256 or 240x432); 'native' keeps the frame size")


def read_kwargs(args: argparse.Namespace) -> dict:
    return {"start": args.start, "end": args.end, "stride": args.stride, "max_frames": args.max_frames,
            "size": args.size}


def _size(text: str):
    if text.strip().lower() == "native":
        return None
    try:
        if "x" in text:
            h, w = text.lower().split("x")
            return int(h), int(w)
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
    """Defaults <- --config YAML <- explicit flags <- --set overrides."""
    flags = {key: getattr(args, flag) for flag, key in _FLAG_KEYS.items() if getattr(args, flag, None) is not None}
    if getattr(args, "seed", None) is not None:
        flags.update({"seed": args.seed, "task.seed": args.seed})
    return load_config(args.config, list(args.overrides), base=base, flags=flags)
