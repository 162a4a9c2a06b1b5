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
                   "norm_groups", "scale_min", "scale_max", "frame_stride", "max_frames", "davis_split", "init_from")


def _command_line(args: argparse.Namespace) -> str:
    """The full command with every recipe option spelled out, so the model card reproduces the run whatever the
    defaults become."""
    parts = ["vidplug", "train-prior", *map(str, args.data), "--out", str(args.out)]
    for name in _RECIPE_OPTIONS:
        value = getattr(args, name)
        if value is not None:
            parts += [f"--{name.replace('_', '-')}", ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
    return shlex.join(parts + (["--resume"] if args.resume else []))


def register(sub) -> None:
    from vidplug.prior.train import TrainConfig

    d = TrainConfig()
    p = sub.add_parser(
        "train-prior",
        help="train a small patch diffusion prior (diffusers UNet2DModel, DDPM) on videos and images",
        description="Train an unconditional epsilon-prediction UNet on random multi-scale crops of DATA; writes "
        "DIR/unet (EMA weights), DIR/scheduler, DIR/README.md (model card), DIR/samples.png and DIR/checkpoint.pt.",
    )
    p.add_argument("data", nargs="+", metavar="DATA", help="video files, image files, image folders or DAVIS roots")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt (same data and settings)")
    p.add_argument("--size", type=int, default=d.size, help="crop side in pixels")
    p.add_argument("--steps", type=int, default=d.steps, help="total optimisation steps")
    p.add_argument("--batch", type=int, default=d.batch, help="crops per step")
    p.add_argument("--lr", type=float, default=d.lr, help="AdamW learning rate")
    p.add_argument("--warmup", type=int, default=d.warmup, help="learning-rate warm-up steps")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of weights, crops, noise and timesteps")
    p.add_argument("--ema-decay", type=float, default=d.ema_decay, help="EMA decay of the saved weights")
    p.add_argument("--channels", type=_channels, default=d.channels,
                   help="UNet widths per level, e.g. 16,32,64,128 (default %(default)s)")
    p.add_argument("--layers-per-block", type=int, default=d.layers_per_block, help="ResNet blocks per level")
    p.add_argument("--norm-groups", type=int, default=d.norm_groups, help="GroupNorm groups (divides every width)")
    p.add_argument("--scale-min", type=float, default=d.scale_min, help="smallest frame downscale before cropping")
    p.add_argument("--scale-max", type=float, default=d.scale_max, help="largest frame downscale before cropping")
    p.add_argument("--frame-stride", type=int, default=d.frame_stride, help="use every N-th frame of videos/folders")
    p.add_argument("--max-frames", type=int, default=d.max_frames, help="at most N frames per source")
    p.add_argument("--davis-split", default=d.davis_split, help="DAVIS split used for DAVIS roots (train|val|all)")
    p.add_argument("--init-from", default=None, metavar="DIR",
                   help="start from the UNet weights of this prior folder (same architecture), e.g. to continue "
                   "the bundled tiny prior")
    p.add_argument("--save-every", type=int, default=d.save_every, help="steps between checkpoints")
    p.add_argument("--sample-every", type=int, default=d.sample_every, help="steps between samples.png (0 = end only)")
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from vidplug.prior.train import TrainConfig, train_prior

    if args.threads is not None:
        if args.threads < 1:
            raise VidplugError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    config = TrainConfig(
        size=args.size, steps=args.steps, batch=args.batch, lr=args.lr, warmup=args.warmup, seed=args.seed,
        ema_decay=args.ema_decay, channels=args.channels, layers_per_block=args.layers_per_block,
        norm_groups=args.norm_groups, scale_min=args.scale_min, scale_max=args.scale_max,
        frame_stride=args.frame_stride, max_frames=args.max_frames, davis_split=args.davis_split,
        init_from=args.init_from, save_every=args.save_every, sample_every=args.sample_every, device=args.device,
    )
    command = _command_line(args)
    result = train_prior(args.data, args.out, config, resume=args.resume, command=command,
                         progress=not args.no_progress)
    print(f"{result.out_dir}: {result.steps} steps, loss {result.final_loss:.4f}, {result.num_params:,} parameters, "
          f"{result.wall_time_s / 60:.1f} min on {result.device}")
    return 0
