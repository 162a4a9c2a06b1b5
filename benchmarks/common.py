"""Shared benchmark helpers: environment record, timing with proper synchronisation, FLOP counting, measured peak
FLOP/s, peak memory (CUDA allocator or host RSS), the priors benchmarks run on, and the RESULTS.md appender.

Nothing here decides anything about restoration; it only measures.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as _dt
import gc
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from vidplug.errors import VidplugError
from vidplug.io.atomic import atomic_write_text
from vidplug.prior.base import DiffusionPrior, linear_alphas_cumprod

REPO = Path(__file__).resolve().parent.parent
RESULTS_MD = Path(__file__).resolve().parent / "RESULTS.md"
BENCH_PRIORS = ("tiny", "tiny-random", "adm-random", "sd15-random", "latent-tiny-random")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
AUTOCAST_OF = {"fp32": "none", "bf16": "bf16", "fp16": "fp16"}  # bench dtype -> SolverConfig.autocast


# ---------------------------------------------------------------------------------------------------------------
# environment


def git_commit() -> str:
    """``git rev-parse --short HEAD`` of this checkout, with ``+dirty`` if tracked files are modified."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores visible"


def environment(device: torch.device) -> dict[str, Any]:
    """What a number needs next to it: device, commit, date (UTC), torch version, host load."""
    env = {
        "device": device_name(device),
        "device_type": device.type,
        "commit": git_commit(),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if hasattr(os, "getloadavg"):
        env["load_average_1min"] = round(os.getloadavg()[0], 2)  # CPU numbers on a shared host depend on it
    if device.type == "cuda":
        env["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
        env["matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
    return env


# ---------------------------------------------------------------------------------------------------------------
# time and FLOPs


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], Any], device: torch.device, *, warmup: int, iters: int) -> list[float]:
    """Seconds of each of ``iters`` calls of ``fn`` after ``warmup`` untimed calls (device synchronised around each
    timed call, so queued GPU work is counted where it belongs)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of ``fn`` (matmuls, convolutions, attention; forward and backward) by
    ``torch.utils.flop_counter.FlopCounterMode``. Elementwise work is not counted, as in the usual MFU convention."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def peak_matmul_flops(device: torch.device, dtype: torch.dtype, *, n: int | None = None, reps: int | None = None) -> float:
    """Best FLOP/s of an ``n x n`` matmul in ``dtype`` on ``device``: the measured peak MFU divides by.

    On CUDA fp32 matmuls use TF32 exactly when cuDNN convolutions do (``torch.backends.cudnn.allow_tf32``, on by
    default), so an fp32 UNet is compared with the peak of the arithmetic its convolutions really use.
    """
    n = n or (8192 if device.type == "cuda" else 1024)
    reps = reps or (20 if device.type == "cuda" else 5)
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    previous = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32
        times = time_calls(lambda: a @ b, device, warmup=2, iters=reps)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    return 2.0 * n**3 / min(times)


# ---------------------------------------------------------------------------------------------------------------
# memory


def _rss_bytes(field: str) -> int | None:
    """``VmRSS`` / ``VmHWM`` of this process from /proc (Linux), bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_rss_peak() -> bool:
    """Reset the kernel's RSS high-water mark (``echo 5 > /proc/self/clear_refs``); False where that is refused.

    Free heap memory is first handed back to the OS (glibc ``malloc_trim``), otherwise memory freed by earlier work
    stays resident and a later peak hides under it.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: the rise may be under-reported
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Peak memory over a block.

    CUDA: ``torch.cuda.max_memory_allocated`` (``peak_bytes``, weights included) and its rise over the allocation at
    entry (``delta_bytes``). CPU: the process's peak resident set (VmHWM, reset at entry) and its rise over the RSS
    at entry; CPU memory is the whole process, so only ``delta_bytes`` speaks for the measured work.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_bytes: int | None = None
        self.delta_bytes: int | None = None
        self.method = ""

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            self.method = "torch.cuda.max_memory_allocated"
        else:
            ok = _reset_rss_peak()
            self._base = _rss_bytes("VmRSS")
            self.method = "peak RSS (VmHWM after clear_refs)" if ok and self._base is not None else "unavailable"
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
        elif self.method != "unavailable":
            self.peak_bytes = _rss_bytes("VmHWM")
        if self.peak_bytes is not None and self._base is not None:
            self.delta_bytes = max(self.peak_bytes - self._base, 0)


# ---------------------------------------------------------------------------------------------------------------
# priors


def frame_channels(prior: DiffusionPrior) -> int:
    """Channels of the frames a prior restores (a latent prior's seeds have others: its latent channels)."""
    return 3 if prior.latent else prior.channels


def seed_shape(prior: DiffusionPrior, frames: int, size: tuple[int, int]) -> tuple[int, ...]:
    """(T, C, H, W) seeds of ``frames`` frames of ``size``: pixels, or (T, 4, H/8, W/8) latents."""
    return prior.seed_shape((frames, frame_channels(prior), *size))


def load_bench_prior(name: str, device: torch.device, seed: int = 0) -> DiffusionPrior:
    """A frozen prior for benchmarking.

    ``tiny``: the bundled trained prior (``load_prior("tiny")``). ``tiny-random``: the same architecture
    (``vidplug.prior.train.build_unet`` with default ``TrainConfig``) with random weights, for speed and mechanics.
    ``adm-random``: ADM-256 (deepinv ``DiffUNet(large_model=True)``, the ImageNet model's shape) with random weights.
    ``sd15-random`` / ``latent-tiny-random``: latent priors (:mod:`benchmarks.latent_priors`).
    On the ``meta`` device the random-weight networks are built there directly (shapes only: no memory, no init).
    """
    torch.manual_seed(seed)  # the random-weight priors are initialised by torch's global generator
    # the noise schedule stays a real tensor (DiffusionPrior reads it on the host); only the network goes to meta
    network_device = device if device.type == "meta" else contextlib.nullcontext()
    if name == "tiny":
        from vidplug.prior import load_prior

        return load_prior("tiny", device=device)
    if name == "tiny-random":
        from vidplug.prior.diffusers_prior import prior_from_unet2d
        from vidplug.prior.train import TrainConfig, build_unet

        with network_device:
            unet = build_unet(TrainConfig())
        return prior_from_unet2d(unet, linear_alphas_cumprod(1000), "tiny-random").to(device)
    if name == "adm-random":
        from deepinv.models import DiffUNet

        from vidplug.prior.adm import ADM_MULTIPLE, ADMEps

        with network_device:
            net = ADMEps(DiffUNet(in_channels=3, out_channels=6, large_model=True, pretrained=None))
        prior = DiffusionPrior(net, linear_alphas_cumprod(1000), name="adm-random", multiple=ADM_MULTIPLE,
                               native_size=256)
        return prior.freeze().to(device)
    if name in ("sd15-random", "latent-tiny-random"):  # Stable Diffusion 1.5's shape / a tiny latent prior
        from benchmarks.latent_priors import random_latent_prior

        return random_latent_prior(name, device)
    raise VidplugError(f"unknown benchmark prior '{name}'; use one of: {', '.join(BENCH_PRIORS)}")


# ---------------------------------------------------------------------------------------------------------------
# arguments and reports


def parse_size(text: str) -> tuple[int, int]:
    """``"128x256"`` -> ``(128, 256)`` as (height, width)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise VidplugError(f"--size must look like HEIGHTxWIDTH (e.g. 128x256), got '{text}'") from None
    if h < 1 or w < 1:
        raise VidplugError(f"--size must be positive, got '{text}'")
    return h, w


def parse_list(text: str, kind: type = str, allowed: Sequence | None = None, flag: str = "") -> list:
    """``"1,2,4"`` -> ``[1, 2, 4]``; ``both`` -> ``[False, True]`` for ``kind=bool``."""
    if kind is bool:
        table = {"both": [False, True], "on": [True], "off": [False], "true": [True], "false": [False]}
        if text.lower() not in table:
            raise VidplugError(f"{flag} takes on, off or both, got '{text}'")
        return table[text.lower()]
    try:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise VidplugError(f"{flag} must be a comma-separated list of {kind.__name__}, got '{text}'") from None
    bad = [v for v in values if allowed is not None and v not in allowed]
    if not values or bad:
        raise VidplugError(f"{flag} got '{text}'; allowed values: {', '.join(map(str, allowed or []))}")
    return values


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """Rows as a markdown table; ``columns`` = (key, header, format spec). Missing/None values print as ``-``."""

    def cell(value, fmt):
        if value is None:
            return "-"
        if isinstance(value, str) or not fmt:
            return str(value)
        return format(value, fmt)

    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(k), f) for k, _, f in columns) + " |" for r in rows]
    return "\n".join(lines)


def env_line(env: dict[str, Any]) -> str:
    parts = [f"device: {env['device']}", f"commit: {env['commit']}", f"date: {env['date']}", f"torch {env['torch']}"]
    if "load_average_1min" in env:
        parts.append(f"host load (1 min): {env['load_average_1min']}")
    return "; ".join(parts)


def append_results(section: str, path: Path = RESULTS_MD) -> None:
    """Append a markdown section to RESULTS.md (rewritten atomically, so a killed run never truncates it)."""
    old = path.read_text() if path.exists() else ""
    atomic_write_text(path, old.rstrip("\n") + "\n\n" + section.strip("\n") + "\n")


def mib(n: int | None) -> float | None:
    return None if n is None else n / 2**20


def add_report_args(p: argparse.ArgumentParser, out_help: str) -> None:
    """The options every benchmark shares: --note, --no-append, --quiet and --out (``out_help`` says what goes there)."""
    p.add_argument("--note", default=None, help="a line added under the table(s) in RESULTS.md")
    p.add_argument("--no-append", action="store_true", help="do not append to benchmarks/RESULTS.md")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--out", required=True, help=out_help)


def bench_main(name: str, build_parser: Callable[[], argparse.ArgumentParser], run: Callable[[Any], Any],
               argv: list[str] | None) -> int:
    """Parse ``argv``, run the benchmark; a :class:`VidplugError` becomes one line on stderr and its exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        args = build_parser().parse_args(argv)  # an option's type may raise VidplugError too (--size)
        run(args)
    except VidplugError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0
