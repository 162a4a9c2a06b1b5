"""``vidplug train-prior DATA... --out DIR``: train a small patch diffusion prior (see vidplug.prior.train)."""

from __future__ import annotations

import argparse
import shlex

from vidplug.errors import VidplugError


def _channels(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(c) for c in text.split(",") if c.strip())
    except ValueError:
        widths = ()
    if len(widths) < 2 or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"--channels takes at least two comma-separated widths, e.g. 16,32,64,128; got '{text}'")
    return widths


# options that change the trained weights, in the order the model card lists them
_RECIPE_OPTIONS = ("size", "steps", "batch", "lr", "warmup", "seed", "ema_decay", "channels", "layers_per_block",
                   "norm_groups", "scale_min", "scale_max", "frame_stride", "max_frames", "davis_split",
                   "init_from")
# every flag that is a shortcut for one TrainConfig field (the field's name)
_FLAGS = (*_RECIPE_OPTIONS, "save_every", "sample_every", "device", "time_limit")


def _command_line(args: argparse.Namespace, config) -> str:
    """The full command with every recipe option spelled out (from the resolved config), so the model card
    reproduces the run whatever the defaults or the YAML file become."""
    parts = ["vidplug", "train-prior", *map(str, args.data), "--out", str(args.out)]
    for name in _RECIPE_OPTIONS:
        value = getattr(config, name)
        if value is not None:
            parts += [f"--{name.replace('_', '-')}", ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
    return shlex.join(parts + (["--resume"] if args.resume else []))


def train_config_from_args(args: argparse.Namespace):
    """TrainConfig defaults <- --config YAML (with its ``base:`` chain) <- explicit flags <- --set, through the same
    typed loader as the run configs (unknown keys and wrong types are one-line errors)."""
    from vidplug.prior.train import TrainConfig
    from vidplug.typed import apply_overrides, load_with_bases, merge

    config = TrainConfig()
    if args.config is not None:
        config = merge(config, load_with_bases(args.config))
    config = apply_overrides(config, {name: getattr(args, name) for name in _FLAGS if getattr(args, name) is not None})
    return apply_overrides(config, list(args.overrides))


def register(sub) -> None:
    from vidplug.prior.train import TrainConfig

    d = TrainConfig()
    p = sub.add_parser(
        "train-prior",
        help="train a small patch diffusion prior (diffusers UNet2DModel, DDPM) on videos and images",
        description="Train an unconditional epsilon-prediction UNet on random multi-scale crops of DATA; writes "
        "DIR/unet (EMA weights), DIR/scheduler, DIR/README.md (model card), DIR/samples.png and DIR/checkpoint.pt. "
        "Settings: defaults < --config YAML < flags < --set KEY=VALUE (keys: the fields of TrainConfig).",
    )
    p.add_argument("data", nargs="+", metavar="DATA", help="video files, image files, image folders or DAVIS roots")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt (same data and settings)")
    p.add_argument("--config", default=None, help="YAML file of training settings (e.g. configs/train/tiny.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. --set ema_decay=0.9995 (repeatable)")
    g = p.add_argument_group("settings (shortcuts for TrainConfig fields; default values shown)")
    g.add_argument("--size", type=int, help=f"crop side in pixels ({d.size})")
    g.add_argument("--steps", type=int, help=f"total optimisation steps ({d.steps})")
    g.add_argument("--batch", type=int, help=f"crops per step ({d.batch})")
    g.add_argument("--lr", type=float, help=f"AdamW learning rate ({d.lr})")
    g.add_argument("--warmup", type=int, help=f"learning-rate warm-up steps ({d.warmup})")
    g.add_argument("--seed", type=int, help=f"seed of weights, crops, noise and timesteps ({d.seed})")
    g.add_argument("--ema-decay", type=float, help=f"EMA decay of the saved weights ({d.ema_decay})")
    g.add_argument("--channels", type=_channels,
                   help=f"UNet widths per level, e.g. 16,32,64,128 ({','.join(map(str, d.channels))})")
    g.add_argument("--layers-per-block", type=int, help=f"ResNet blocks per level ({d.layers_per_block})")
    g.add_argument("--norm-groups", type=int, help=f"GroupNorm groups, divides every width ({d.norm_groups})")
    g.add_argument("--scale-min", type=float, help=f"smallest frame downscale before cropping ({d.scale_min})")
    g.add_argument("--scale-max", type=float, help=f"largest frame downscale before cropping ({d.scale_max})")
    g.add_argument("--frame-stride", type=int, help=f"use every N-th frame of videos/folders ({d.frame_stride})")
    g.add_argument("--max-frames", type=int, help="at most N frames per source (all)")
    g.add_argument("--davis-split", help=f"DAVIS split used for DAVIS roots: train|val|all ({d.davis_split})")
    g.add_argument("--init-from", metavar="DIR", help="start from the UNet weights of this prior folder (same "
                   "architecture), e.g. to keep training the bundled tiny prior (none)")
    g.add_argument("--save-every", type=int, help=f"steps between checkpoints ({d.save_every})")
    g.add_argument("--sample-every", type=int, help=f"steps between samples.png, 0 = end only ({d.sample_every})")
    g.add_argument("--device", help=f"auto | cpu | cuda | cuda:N ({d.device})")
    g.add_argument("--time-limit", type=float, metavar="MIN", help="train at most MIN minutes in this invocation, "
                   "then publish and stop (e.g. a GPU lease); the model card gives the --steps that repeat the run (none)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from vidplug.prior.train import train_prior

    if args.threads is not None:
        if args.threads < 1:
            raise VidplugError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    config = train_config_from_args(args)
    result = train_prior(args.data, args.out, config, resume=args.resume, command=_command_line(args, config),
                         progress=not args.no_progress)
    print(f"{result.out_dir}: {result.steps} steps, loss {result.final_loss:.4f}, {result.num_params:,} parameters, "
          f"{result.wall_time_s / 60:.1f} min on {result.device}")
    return 0
