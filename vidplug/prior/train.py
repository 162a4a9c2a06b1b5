"""Training a small patch diffusion prior: a diffusers ``UNet2DModel`` learns DDPM epsilon prediction on random
multi-scale crops (:mod:`vidplug.prior.patches`).

Recipe: linear betas 1e-4..0.02 over T = 1000 steps, timesteps uniform, noise added with
``DDPMScheduler.add_noise``, MSE on epsilon, AdamW with a linear warm-up then a constant rate, gradient clipping,
an exponential moving average (EMA) of the weights, bf16 autocast on CUDA only. The UNet has no attention, so it is
fully convolutional and restores frames larger than its training crops.

Output folder (diffusers layout, loadable with ``UNet2DModel.from_pretrained(DIR / "unet")``)::

    DIR/unet/          EMA weights (safetensors) + config
    DIR/scheduler/     DDPMScheduler config
    DIR/README.md      model card: data, command, steps, loss, parameters, wall time, device
    DIR/samples.png    DDIM 50-step samples from the EMA model at the training size
    DIR/checkpoint.pt  everything needed to resume: model, EMA, optimiser, step, RNG state, recent losses

All of it is rewritten atomically at every checkpoint, so a killed run leaves a usable prior of its last checkpoint.
Resuming restores the generator that draws crops, noise and timesteps, so a resumed run follows the same sequence of
batches as an uninterrupted one with the same seed (bit-identical on CPU).
"""

from __future__ import annotations

import copy
import logging
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from vidplug.errors import VidplugError
from vidplug.io.atomic import atomic_path, atomic_write_text, atomic_write_with
from vidplug.prior.base import to_model_range
from vidplug.prior.patches import PatchSampler, load_sources
from vidplug.runtime import resolve_device

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
LOSS_WINDOW = 100  # the reported loss is the mean of this many most recent steps


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train_prior` (saved in the checkpoint and the model card)."""

    size: int = 64  # training crop side, pixels
    steps: int = 10_000  # total optimisation steps (a resumed run continues up to this count)
    batch: int = 16  # crops per step
    lr: float = 5e-4  # AdamW learning rate after warm-up
    warmup: int = 200  # steps of linear learning-rate warm-up from 0
    weight_decay: float = 0.0  # AdamW weight decay
    grad_clip: float = 1.0  # max global gradient norm
    ema_decay: float = 0.999  # EMA decay (ramped up as (1+s)/(10+s) early on)
    seed: int = 0  # seeds the weights and every random draw (crops, noise, timesteps)
    channels: tuple[int, ...] = (16, 32, 64, 128)  # UNet block widths; len - 1 = number of 2x downsamplings
    layers_per_block: int = 1  # ResNet blocks per UNet level
    norm_groups: int = 8  # GroupNorm groups (must divide every width)
    scale_min: float = 0.25  # smallest downscale factor applied to a frame before cropping
    scale_max: float = 1.0  # largest downscale factor (1 = native resolution)
    frame_stride: int = 1  # keep every n-th frame of videos and folders
    max_frames: int | None = None  # at most this many frames per data source
    davis_split: str = "train"  # DAVIS split used when a DAVIS root is given
    save_every: int = 500  # steps between checkpoints (and exports)
    sample_every: int = 2000  # steps between samples.png updates (0 = only at the end)
    num_samples: int = 16  # images in samples.png
    device: str = "auto"  # "auto" (cuda when available), "cpu", "cuda", "cuda:1", ...
    time_limit: float | None = None  # minutes of training in this invocation: past it, publish and stop (a GPU lease)
    init_from: str | None = None  # start from these UNet weights (a prior folder with unet/, same architecture)
    sources: list[str] = field(default_factory=list)  # filled in by train_prior: the DATA paths


@dataclass
class TrainResult:
    """What a finished (or resumed-and-finished) run reports."""

    out_dir: Path
    steps: int  # optimisation steps done in total
    final_loss: float  # mean training loss over the last LOSS_WINDOW steps
    num_params: int  # UNet parameters
    wall_time_s: float  # training time summed over all runs of this folder
    device: str


def build_unet(config: TrainConfig) -> nn.Module:
    """A ``UNet2DModel`` without attention, 3 channels in and out, widths ``config.channels``."""
    from diffusers import UNet2DModel

    channels = tuple(int(c) for c in config.channels)
    if len(channels) < 2 or any(c % config.norm_groups for c in channels):
        raise VidplugError(
            f"--channels must list at least 2 widths divisible by {config.norm_groups} (e.g. 16,32,64,128), got "
            f"{','.join(map(str, channels))}"
        )
    return UNet2DModel(
        sample_size=config.size,
        in_channels=3,
        out_channels=3,
        layers_per_block=config.layers_per_block,
        block_out_channels=channels,
        down_block_types=("DownBlock2D",) * len(channels),
        up_block_types=("UpBlock2D",) * len(channels),
        norm_num_groups=config.norm_groups,
    )


def make_scheduler():
    """DDPM's schedule: 1000 steps, linear betas 1e-4..0.02, epsilon prediction."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                         prediction_type="epsilon")


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """ema <- d * ema + (1 - d) * model with d = min(decay, (1 + step) / (10 + step)) (fast start, as diffusers)."""
    d = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, 1.0 - d)


@torch.no_grad()
def ddim_samples(unet: nn.Module, n: int, size: int, seed: int = 0, steps: int = 50) -> torch.Tensor:
    """``n`` DDIM samples (eta 0) from ``unet`` at ``size`` x ``size``: (n, 3, size, size) in [0, 1]."""
    from diffusers import DDIMScheduler

    device = next(unet.parameters()).device
    scheduler = DDIMScheduler.from_config(make_scheduler().config)
    scheduler.set_timesteps(steps)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=g).to(device)  # (n, 3, size, size) model space
    for t in scheduler.timesteps:
        eps = unet(x, t.to(device)).sample
        x = scheduler.step(eps, t, x).prev_sample
    return ((x.float().cpu() + 1) / 2).clamp(0, 1)


def _save_pretrained_atomic(model, path: Path) -> None:
    """``model.save_pretrained`` into a hidden sibling, then swap it in (a killed run keeps the old folder)."""
    tmp = path.parent / f".{path.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


def _write_samples(unet: nn.Module, out_dir: Path, config: TrainConfig) -> None:
    from torchvision.utils import save_image

    was_training = unet.training
    unet.eval()
    images = ddim_samples(unet, config.num_samples, config.size, seed=config.seed)
    unet.train(was_training)
    nrow = max(1, int(config.num_samples**0.5))
    with atomic_path(out_dir / "samples.png") as tmp:
        save_image(images, tmp, nrow=nrow, padding=2, pad_value=1.0)


def model_card(result: TrainResult, config: TrainConfig, commands: list[str], source_frames: dict[str, int],
               time_limited: bool = False) -> str:
    """The README.md written next to the weights; ``commands``: the first run's command line, then each resume's;
    ``time_limited``: the run stopped at ``config.time_limit`` before ``config.steps``."""
    import diffusers

    data = "\n".join(f"- `{name}`: {n} frames" for name, n in source_frames.items())
    runs = "\n".join(f"    {c}" for c in commands) or "    (not recorded)"
    recipe = "\n".join(f"- {k}: {v}" for k, v in asdict(config).items() if k != "sources")
    stopped = (f" (stopped by the time limit before the {config.steps} asked for; the same command with `--steps "
               f"{result.steps}` repeats the run)" if time_limited else "")
    return f"""# vidplug patch diffusion prior

A small unconditional DDPM (epsilon prediction) trained by `vidplug train-prior` on random multi-scale
{config.size}x{config.size} crops. Fully convolutional (no attention): it applies to frames of any size whose sides
are multiples of {2 ** (len(config.channels) - 1)} (vidplug pads other sizes).

Load: `UNet2DModel.from_pretrained(DIR, subfolder="unet")`, `DDPMScheduler.from_pretrained(DIR, subfolder="scheduler")`.

## Training data
{data}

Crops: downscale by a factor uniform in [{config.scale_min}, {config.scale_max}], cut {config.size}x{config.size},
flip horizontally with probability 0.5; each data source is drawn with equal probability.

## Recipe
Command (then each `--resume`, if any):

{runs}

{recipe}
- schedule: DDPM linear betas 1e-4..0.02, T = 1000, uniform timesteps, MSE on epsilon, AdamW, EMA weights saved

## Result
- steps: {result.steps}{stopped}
- final training loss (mean of last {LOSS_WINDOW} steps): {result.final_loss:.4f}
- parameters: {result.num_params:,} ({result.num_params * 4 / 2**20:.1f} MB fp32)
- wall time: {result.wall_time_s / 60:.1f} min on {result.device} ({platform.processor() or platform.machine()},
  {torch.get_num_threads()} torch threads)
- software: torch {torch.__version__}, diffusers {diffusers.__version__}

`samples.png`: {config.num_samples} DDIM 50-step samples (eta 0, seed {config.seed}) from the EMA weights.
"""


def _load_checkpoint(path: Path, config: TrainConfig, unet, ema, optimizer, generator) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=False)
    saved = state["config"]
    if tuple(saved["channels"]) != tuple(config.channels) or saved["layers_per_block"] != config.layers_per_block:
        raise VidplugError(
            f"{path} was trained with --channels {','.join(map(str, saved['channels']))} and layers_per_block "
            f"{saved['layers_per_block']}; resume with the same architecture or use a new --out folder"
        )
    unet.load_state_dict(state["unet"])
    ema.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    return state


def _load_init(path: str, unet: nn.Module, ema: nn.Module) -> None:
    """Start model and EMA from the UNet weights saved under ``path`` (``path/unet`` or ``path`` itself).

    Used to continue a prior whose training checkpoint is gone (the bundled ``tiny`` ships only its EMA weights):
    the optimiser and the random streams restart, so the run is a fine-tune, recorded as such in the model card.
    """
    from diffusers import UNet2DModel

    root = Path(path)
    folder = root / "unet" if (root / "unet" / "config.json").is_file() else root
    if not (folder / "config.json").is_file():
        raise VidplugError(f"--init-from {path}: no UNet found (expected {root}/unet/config.json)")
    loaded = UNet2DModel.from_pretrained(folder)
    try:
        unet.load_state_dict(loaded.state_dict())
    except RuntimeError as exc:
        raise VidplugError(f"--init-from {path} has another architecture; pass its --channels and "
                           f"--layers-per-block ({str(exc).splitlines()[0]})") from None
    ema.load_state_dict(unet.state_dict())


class _TrainingRun:
    """The state of one training folder: networks, optimiser, generator, counters; publishes checkpoints."""

    def __init__(self, config: TrainConfig, out_dir: Path, device: torch.device, source_frames: dict[str, int]):
        self.config, self.out_dir, self.device, self.source_frames = config, out_dir, device, source_frames
        torch.manual_seed(config.seed)  # weight initialisation
        self.unet = build_unet(config)
        self.ema = copy.deepcopy(self.unet).requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.unet.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.generator = torch.Generator().manual_seed(config.seed)  # crops, noise, timesteps: all of it
        self.scheduler = make_scheduler()
        self.num_params = sum(p.numel() for p in self.unet.parameters())
        self.step, self.elapsed, self.losses, self.commands = 0, 0.0, [], []
        self.time_limited = False  # stopped by config.time_limit (said in the model card)

    def resume(self, ckpt_path: Path) -> None:
        state = _load_checkpoint(ckpt_path, self.config, self.unet, self.ema, self.optimizer, self.generator)
        self.step, self.elapsed, self.losses = state["step"], state["elapsed"], list(state["losses"])
        self.commands = list(state.get("commands", []))
        log.info("resuming %s at step %d", ckpt_path, self.step)

    def to_device(self) -> None:
        self.unet.to(self.device).train()
        self.ema.to(self.device).eval()
        for group in self.optimizer.state.values():  # optimiser state was loaded on the CPU
            for k, v in group.items():
                if torch.is_tensor(v) and v.ndim > 0:
                    group[k] = v.to(self.device)

    def train_step(self, sampler: PatchSampler, autocast) -> float:
        """One optimisation step on a fresh batch of crops; returns its loss."""
        config, device = self.config, self.device
        x0 = to_model_range(sampler.sample(config.batch, self.generator))  # (B, 3, S, S) in [-1, 1]
        noise = torch.randn(x0.shape, generator=self.generator)  # (B, 3, S, S)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (config.batch,), generator=self.generator)
        x0, noise, t = x0.to(device), noise.to(device), t.to(device)
        x_t = self.scheduler.add_noise(x0, noise, t)  # sqrt(a_bar) x0 + sqrt(1 - a_bar) eps
        for g in self.optimizer.param_groups:  # stateless schedule: resuming needs nothing extra
            g["lr"] = config.lr * min(1.0, (self.step + 1) / max(1, config.warmup))
        with autocast:
            pred = self.unet(x_t, t).sample
        loss = F.mse_loss(pred.float(), noise)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.unet.parameters(), config.grad_clip)
        self.optimizer.step()
        update_ema(self.ema, self.unet, config.ema_decay, self.step)
        self.step += 1
        self.losses = self.losses[-(LOSS_WINDOW - 1):] + [loss.item()]
        return self.losses[-1]

    def result(self) -> TrainResult:
        final = sum(self.losses[-LOSS_WINDOW:]) / max(1, len(self.losses[-LOSS_WINDOW:]))
        return TrainResult(self.out_dir, self.step, final, self.num_params, self.elapsed, str(self.device))

    def publish(self, samples: bool) -> None:
        """Checkpoint, EMA weights, scheduler, model card (and samples.png), each written atomically."""
        state = {"unet": self.unet.state_dict(), "ema": self.ema.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(),
                 "step": self.step, "elapsed": self.elapsed, "losses": self.losses[-LOSS_WINDOW:],
                 "config": asdict(self.config), "commands": self.commands}
        atomic_write_with(self.out_dir / CHECKPOINT, lambda tmp: torch.save(state, tmp))
        _save_pretrained_atomic(self.ema, self.out_dir / "unet")
        _save_pretrained_atomic(self.scheduler, self.out_dir / "scheduler")
        if samples:
            _write_samples(self.ema, self.out_dir, self.config)
        card = model_card(self.result(), self.config, self.commands, self.source_frames, self.time_limited)
        atomic_write_text(self.out_dir / "README.md", card)


def _check_request(ckpt_path: Path, config: TrainConfig, resume: bool) -> None:
    if resume and not ckpt_path.is_file():
        raise VidplugError(f"--resume given but {ckpt_path} does not exist; drop --resume to start a new run")
    if not resume and ckpt_path.is_file():
        raise VidplugError(f"{ckpt_path} exists; pass --resume to continue it or choose another --out folder")
    if config.steps < 0 or config.batch < 1 or config.size < 8 or config.save_every < 1:
        raise VidplugError("--steps must be >= 0, --batch >= 1, --size >= 8 and --save-every >= 1")
    if config.time_limit is not None and not config.time_limit > 0:
        raise VidplugError(f"--time-limit must be a positive number of minutes, got {config.time_limit}")


def train_prior(
    data: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    command: str = "",
    progress: bool = True,
) -> TrainResult:
    """Train (or resume training) a patch diffusion prior on ``data`` and write it to ``out_dir``.

    Args:
        data: video files, image files, image folders, DAVIS roots (see :func:`vidplug.prior.patches.load_sources`).
        out_dir: output folder (layout in the module docstring).
        config: hyper-parameters; defaults to :class:`TrainConfig()`.
        resume: continue from ``out_dir/checkpoint.pt`` (VidplugError when it is missing); without it an existing
            checkpoint is refused rather than overwritten.
        command: the command line, recorded in the model card (resumes add theirs).
        progress: show a tqdm progress bar with the loss.

    Returns:
        A :class:`TrainResult`.
    """
    config = copy.deepcopy(config) if config is not None else TrainConfig()
    config.sources = [str(d) for d in data]
    out_dir = Path(out_dir)
    _check_request(out_dir / CHECKPOINT, config, resume)
    device = resolve_device(config.device)
    sources = load_sources(data, stride=config.frame_stride, max_frames=config.max_frames,
                           davis_split=config.davis_split)
    sampler = PatchSampler(sources, config.size, (config.scale_min, config.scale_max))
    log.info("training data: %d frames from %d sources", sampler.num_frames, len(sampler.sources))
    run = _TrainingRun(config, out_dir, device, {s.name: len(s.frames) for s in sampler.sources})
    if resume:
        run.resume(out_dir / CHECKPOINT)
    elif config.init_from:
        _load_init(config.init_from, run.unet, run.ema)
    if command:
        run.commands.append(command)
    run.to_device()
    if device.type != "cpu":
        sampler.to(device)  # crops cut and resized on the accelerator: the CPU would bound the step rate
    out_dir.mkdir(parents=True, exist_ok=True)
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    bar = tqdm(total=config.steps, initial=run.step, disable=not progress, desc="train-prior", dynamic_ncols=True)
    start, first_step = time.perf_counter(), run.step
    deadline = start + 60 * config.time_limit if config.time_limit is not None else float("inf")
    while run.step < config.steps:
        run.train_step(sampler, autocast)
        bar.update(1)
        bar.set_postfix(loss=f"{sum(run.losses) / len(run.losses):.4f}")
        run.time_limited = run.step < config.steps and time.perf_counter() >= deadline
        last = run.step == config.steps or run.time_limited
        if run.step % config.save_every == 0 or last:
            run.elapsed += time.perf_counter() - start
            start = time.perf_counter()
            every = config.sample_every > 0 and run.step % config.sample_every == 0
            run.publish(samples=last or every)
        if run.time_limited:  # the loop's own condition ends a run that reached config.steps
            break
    bar.close()
    if run.step == first_step:
        run.publish(samples=True)  # nothing left to train (e.g. --resume --steps <done>): re-export what there is
    return run.result()
