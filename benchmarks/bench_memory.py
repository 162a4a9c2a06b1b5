"""FLOPs and peak memory of the solver for a prior too large for this machine (ADM-256), ESTIMATED without a GPU.

    python -m benchmarks.bench_memory [--prior adm-random] [--size 256x256] [--steps 3] [--flop-steps 2,3,4]
        [--dtypes fp32,bf16] [--chunks 1,2,4,8,16,32] [--micro-batch 1,4] [--budget-gib 80] [--peak-tflops 790]
        [--mfu 0.4] [--device cpu] [--validate-prior tiny-random] [--validate-size 64x128] [--validate-frames 4]
        --out DIR

The solver's iteration (:class:`benchmarks.memory_estimate.SolverStep`: seeds -> R(z) over K DDIM steps -> SR x4
data term -> backward -> Adam; checkpointing and micro-batching as ``SolverConfig`` runs them) runs on fake tensors
(meta tensors standing for CPU tensors: shapes and dtypes only, the real autograd, checkpointing and autocast),
watched by FlopCounterMode and by a counter of live tensor bytes. Nothing of the estimate runs on a device.
Reported:

1. FLOPs of one network forward at the frame size, and model FLOPs per frame-iteration (K forwards + backward,
   counted over a real forward+backward) for each K, with ideal frame-iterations/s at ``--peak-tflops``;
2. the bytes autograd saves through R(z) per frame and per iteration (fp32; bf16 under CUDA autocast), for all K
   steps and for one step (what checkpointing keeps at a time);
3. the peak of live tensor bytes of one iteration, whole chunk or micro-batched, with or without checkpointing:
   each phase of the iteration (forward, backward, micro-batch backward, optimiser step) simulated at two chunk
   sizes and extended to any T along its line (exact where every tensor is per-frame or fixed; checked by a third
   simulation); the largest T within ``--budget-gib``; executed FLOPs per frame-iteration;
4. validation of the method against real iterations of a small prior on ``--device`` (CPU: peak RSS rise; CUDA:
   the allocator's peak), at two chunk sizes.

Writes DIR/bench_memory.json, prints the tables and appends them to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from benchmarks.common import (
    AUTOCAST_OF,
    BENCH_PRIORS,
    PeakMemory,
    add_report_args,
    append_results,
    bench_main,
    count_flops,
    env_line,
    environment,
    frame_channels,
    load_bench_prior,
    markdown_table,
    parse_list,
    parse_size,
    seed_shape,
)
from benchmarks.memory_estimate import (
    SolverStep,
    affine_in_frames,
    cuda_autocast_without_gpu,
    fake_mode,
    fake_prior,
    fake_sr_data,
    iteration_peak,
    largest_frames,
    peak_of,
    saved_bytes_of_r,
    sr_data,
)
from vidplug.errors import VidplugError
from vidplug.io.atomic import atomic_write_json
from vidplug.prior.ddim import ddim_timesteps
from vidplug.runtime import resolve_device
from vidplug.solver.memory import IterationMemory
from vidplug.solver.reverse import AUTOCAST

log = logging.getLogger("benchmarks.bench_memory")
GIB = 2**30


def modes(micro_batches: list[int], latent: bool = False) -> list[tuple[str, bool | str, int]]:
    """(name, checkpoint, micro_batch) of every memory mode: whole chunk first, then each micro-batch size m.
    A latent prior adds decoder checkpointing alone (checkpoint ``"decoder"``); its per-step checkpointing covers
    the decoder too."""
    out = [("plain", False, 0), ("checkpoint", True, 0)]
    if latent:
        out.insert(1, ("checkpoint decoder", "decoder", 0))
    for m in micro_batches:
        out += [(f"micro-batch {m}", False, m), (f"micro-batch {m} + checkpoint", True, m)]
    return out


def gib(n: float | None) -> float | None:
    return None if n is None else n / GIB


# ---------------------------------------------------------------------------------------------------------------
# FLOPs


def flop_table(prior, size: tuple[int, int], steps_list: list[int], fake) -> dict[str, Any]:
    """FLOPs of one network forward (batch 1; a latent prior's decoder apart) and model FLOPs per frame-iteration
    (T = 1, fp32, no checkpoint)."""
    data = fake_sr_data(1, size, frame_channels(prior), fake)
    with fake:
        z = torch.randn(seed_shape(prior, 1, size))  # (1, C, H, W) one frame's seed (latent: (1, 4, H/8, W/8))
        with torch.no_grad():
            forward = count_flops(lambda: prior.eps(z, 500))
            decoder = count_flops(lambda: prior.decode_frames(z, size)) if prior.latent else 0
        per_iter = {k: count_flops(SolverStep(prior, data, z, steps=k, autocast_dtype=None, size=size))
                    for k in steps_list}
    return {"forward": forward, "decoder": decoder, "per_frame_iteration": per_iter}


# ---------------------------------------------------------------------------------------------------------------
# memory


def saved_table(prior, cuda_prior, size: tuple[int, int], steps: int, dtype: str, fake) -> dict[str, Any]:
    """Saved-activation bytes of R (all K steps) and of one DDIM step, per frame and fixed, from T = 1 and 2."""
    ts = ddim_timesteps(steps, prior.num_train_timesteps)
    ac = AUTOCAST[AUTOCAST_OF[dtype]]
    policies = {"cpu": prior} if ac is None else {"cpu": prior, "cuda": cuda_prior}
    out: dict[str, Any] = {}
    for policy, p in policies.items():
        with fake, cuda_autocast_without_gpu():
            z = torch.randn(seed_shape(prior, 2, size), device=policy)  # (2, C, H, W) seeds
            graphs = [("R", ts, False), ("step", ts[:1], False)]  # latent: "step" includes the decoder
            if prior.latent:
                graphs.append(("R, decoder checkpointed", ts, True))
            for graph, timesteps, dec in graphs:
                fit = affine_in_frames({n: saved_bytes_of_r(p, z[:n], timesteps, ac, size, dec) for n in (1, 2)})
                out[f"{policy}_{graph}"] = {"per_frame_bytes": fit.per_frame_bytes, "fixed_bytes": fit.fixed_bytes}
    return out


def make_step(prior, fake, size: tuple[int, int], frames: int, *, steps: int, dtype: str, checkpoint: bool | str,
              micro_batch: int) -> SolverStep:
    """A fake iteration of ``frames`` frames."""
    data = fake_sr_data(frames, size, frame_channels(prior), fake)
    with fake:
        z = torch.randn(seed_shape(prior, frames, size))  # (T, C, H, W) seeds
        return SolverStep(prior, data, z, steps=steps, autocast_dtype=AUTOCAST[AUTOCAST_OF[dtype]],
                          checkpoint=checkpoint, micro_batch=micro_batch, size=size)


def simulate(prior, fake, size: tuple[int, int], frames: int, **kw) -> dict[str, Any]:
    """Resident bytes and live-tensor peaks of one fake iteration of ``frames`` frames (see :func:`make_step`)."""
    step = make_step(prior, fake, size, frames, **kw)
    with fake:
        return iteration_peak(step)


def executed_flops(prior, fake, size: tuple[int, int], frames: int, **kw) -> int:
    """FLOPs one iteration executes, recomputations included. Counted apart from the memory simulation:
    FlopCounterMode's module tracking holds tensors that checkpointing would have freed."""
    step = make_step(prior, fake, size, frames, **kw)
    with fake:
        return count_flops(step)


Lines = dict[str, IterationMemory]  # phase of the iteration -> its peak bytes, fixed + frames * per_frame


def with_cuda_policy(lines: Lines, saved: dict[str, Any], graph: str, micro: int) -> Lines:
    """Move peak lines simulated under CPU autocast by what CUDA autocast saves more (bf16 only; else as they are).

    ``graph``: ``"R"`` or ``"step"``, what is in the graph at the peak; ``micro``: m frames in it, or 0 for all T.
    Every phase is moved, also those without R's graph: an upper bound.
    """
    cpu, cuda = saved[f"cpu_{graph}"], saved.get(f"cuda_{graph}")
    if cuda is None:
        return lines
    d_frame = cuda["per_frame_bytes"] - cpu["per_frame_bytes"]
    d_fixed = cuda["fixed_bytes"] - cpu["fixed_bytes"]
    if micro:
        return {k: IterationMemory(v.fixed_bytes + d_fixed + micro * d_frame, v.per_frame_bytes)
                for k, v in lines.items()}
    return {k: IterationMemory(v.fixed_bytes + d_fixed, v.per_frame_bytes + d_frame) for k, v in lines.items()}


def predicted_peak(frames: int, lines: Lines, whole: Lines, micro: int) -> int:
    """Peak bytes at ``frames``: on ``lines``, or on ``whole`` (no micro-batching) when ``frames <= micro``, since
    the solver micro-batches only when m < T."""
    return peak_of((whole if micro and frames <= micro else lines).values(), frames)


def simulated_lines(prior, fake, size, *, steps: int, dtype: str, checkpoint: bool, micro_batch: int,
                    check: int | None, progress) -> tuple[Lines, dict[int, dict], float | None]:
    """Each phase's peak line through simulations at two chunk sizes (1 and 2 frames; 2m and 3m micro-batched),
    the simulations, and the relative error of the predicted peak at ``check`` frames (simulated too)."""
    m = micro_batch
    points = (2 * m, 3 * m) if m else (1, 2)
    sims = {}
    for t in (*points, *([check] if check else [])):
        progress.set_postfix_str(f"{dtype} ckpt={checkpoint} m={m} T={t}")
        sims[t] = simulate(prior, fake, size, t, steps=steps, dtype=dtype, checkpoint=checkpoint, micro_batch=m)
        progress.update()
    lines = {phase: affine_in_frames({t: sims[t]["phase_peak_bytes"][phase] for t in points})
             for phase in sims[points[0]]["phase_peak_bytes"]}
    if not check:
        return lines, sims, None
    actual = sims[check]["peak_bytes"]
    return lines, sims, abs(peak_of(lines.values(), check) - actual) / actual


def memory_rows(prior, cuda_prior, fake, size, *, steps, dtypes, chunks, micro, budget, cap, plain_flops,
                progress) -> list[dict]:
    """One row per (dtype, mode): saved bytes, the peak lines, predicted peaks, largest T, executed FLOPs.

    Without micro-batching the prediction is checked by a third simulation at the largest chunk (as cheap as any
    on fake tensors); micro-batched ones are not (a simulation costs a pass per slice): the unit tests check them.
    """
    rows: list[dict] = []
    flops: dict[tuple[bool, int], float] = {(False, 0): plain_flops}  # (ckpt, m) -> executed FLOPs / frame-it
    big, before = sorted(chunks)[-1], (sorted(chunks)[-2] if len(chunks) > 1 else None)
    for dtype in dtypes:
        saved = saved_table(prior, cuda_prior, size, steps, dtype, fake)
        whole: dict[bool, Lines] = {}  # checkpoint -> lines without micro-batching (used for T <= m)
        for mode, ckpt, m in modes(micro, prior.latent):
            simulated, sims, error = simulated_lines(prior, fake, size, steps=steps, dtype=dtype, checkpoint=ckpt,
                                                     micro_batch=m, check=None if m else max(big, 3),
                                                     progress=progress)
            # decoder checkpointing: its peak is while the decoder is recomputed, with R's whole graph: "R"
            graph = "step" if ckpt is True else "R"
            lines = with_cuda_policy(simulated, saved, graph, m)
            if not m:
                whole[ckpt] = lines
            if m and predicted_peak(m + 1, lines, whole[ckpt], m) > budget:  # micro-batching does not fit
                largest = largest_frames(budget, whole[ckpt].values(), m)
            else:
                largest = largest_frames(budget, lines.values(), cap)
            if (ckpt, m) not in flops:  # the same for every dtype
                t = min(sims)
                flops[ckpt, m] = executed_flops(prior, fake, size, t, steps=steps, dtype="fp32", checkpoint=ckpt,
                                                micro_batch=m) / t
            shown_graph = "R, decoder checkpointed" if ckpt == "decoder" else graph  # what R's backward keeps
            shown = saved.get(f"cuda_{shown_graph}", saved[f"cpu_{shown_graph}"])
            peaks = {t: predicted_peak(t, lines, whole[ckpt], m) for t in chunks}
            rows.append({
                "dtype": dtype, "mode": mode, "checkpoint": ckpt, "micro_batch": m,
                "autocast_policy": None if dtype == "fp32" else "cuda: cpu simulation + saved-bytes difference",
                "frames_in_graph": f"min(T, {m})" if m else "T",
                "saved_graph": "one DDIM step (+ step inputs)" if ckpt is True else f"{shown_graph}, {steps} steps",
                "saved_gib_per_frame": gib(shown["per_frame_bytes"]), "saved_fixed_gib": gib(shown["fixed_bytes"]),
                "saved": saved, "simulated": {str(t): v for t, v in sims.items()},
                "phase_lines": {k: {"fixed_bytes": v.fixed_bytes, "per_frame_bytes": v.per_frame_bytes}
                                for k, v in lines.items()},
                "check_relative_error": error,
                "peak_gib": {str(t): gib(v) for t, v in peaks.items()},
                "gib_per_added_frame": gib((peaks[big] - peaks[before]) / (big - before)) if before else None,
                "largest_frames": largest, "flops_per_frame_iteration": flops[ckpt, m],
            })
            log.info("%s %s: %.1f GiB at T=%d, largest T %d", dtype, mode, gib(peaks[big]), big, largest)
    return rows


# ---------------------------------------------------------------------------------------------------------------
# validation against a real run


def measure_both(real, fprior, fake, size: tuple[int, int], frames: int, device: torch.device,
                 **kw) -> dict[str, Any]:
    """One iteration's bytes by the estimate (fake tensors) and by a real run on ``device``: the same live-byte
    counter, and the measured peak rise (``PeakMemory``: RSS on CPU, the CUDA allocator on a GPU), each after one
    warm-up iteration (Adam state, library caches)."""
    c = frame_channels(real)
    data = fake_sr_data(frames, size, c, fake)
    with fake:
        z = torch.randn(seed_shape(real, frames, size))  # (T, C, H, W) seeds
        m = kw["micro_batch"]
        in_graph = m if 0 < m < frames else frames  # frames in R's graph at once
        ts = ddim_timesteps(kw["steps"], real.num_train_timesteps)
        saved = saved_bytes_of_r(fprior, z[:in_graph], ts[:1] if kw["checkpoint"] is True else ts,
                                 kw["autocast_dtype"], size, kw["checkpoint"] == "decoder")
        estimate = iteration_peak(SolverStep(fprior, data, z, size=size, **kw), warmup=1)
    data = sr_data(frames, size, c)
    data.y, data.operator = data.y.to(device), data.operator.to(device)
    z = torch.randn(seed_shape(real, frames, size), generator=torch.Generator().manual_seed(0)).to(device)
    mem = PeakMemory(device)
    measured = iteration_peak(SolverStep(real, data, z, size=size, **kw), warmup=1, around=mem)
    return {"saved": saved, "estimate": estimate["peak_rise_bytes"], "real_live": measured["peak_rise_bytes"],
            "measured": mem.delta_bytes, "method": mem.method}


def validation_rows(name: str, size: tuple[int, int], frames: int, device: torch.device, *, steps: int,
                    dtypes: list[str], micro: int, progress) -> list[dict]:
    """The estimate against real iterations of ``frames // 2`` and ``frames`` frames on ``device``, and per frame."""
    real, fake = load_bench_prior(name, device), fake_mode()
    fprior = fake_prior(name, fake)
    counts = (max(frames // 2, 1), frames)
    rows = []
    for dtype in dtypes:
        for mode, ckpt, m in modes([micro], real.latent):
            kw = {"steps": steps, "autocast_dtype": AUTOCAST[AUTOCAST_OF[dtype]], "checkpoint": ckpt, "micro_batch": m}
            at = {}
            for t in counts:
                progress.set_postfix_str(f"validate {dtype} {mode} T={t}")
                at[t] = measure_both(real, fprior, fake, size, t, device, **kw)
                progress.update()
            small, big = at[counts[0]], at[counts[1]]
            row = {"dtype": dtype, "mode": mode, "micro_batch": m, "frames": list(counts), "method": big["method"],
                   "runs": {str(t): v for t, v in at.items()},
                   **{f"{k}_mib": None if big[k] is None else big[k] / 2**20
                      for k in ("saved", "estimate", "real_live", "measured")}}
            if big["measured"]:
                row["estimate_over_measured"] = big["estimate"] / big["measured"]
            if counts[1] > counts[0] and small["measured"] is not None and big["measured"] is not None:
                per = counts[1] - counts[0]
                row["estimate_mib_per_frame"] = (big["estimate"] - small["estimate"]) / per / 2**20
                row["measured_mib_per_frame"] = (big["measured"] - small["measured"]) / per / 2**20
                if row["estimate_mib_per_frame"] >= 1.0 and row["measured_mib_per_frame"] > 0:
                    row["per_frame_ratio"] = row["estimate_mib_per_frame"] / row["measured_mib_per_frame"]
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------------------------
# run and report


def run(args: argparse.Namespace) -> dict[str, Any]:
    size = parse_size(args.size)
    vsize = parse_size(args.validate_size)
    dtypes = parse_list(args.dtypes, str, allowed=["fp32", "bf16"], flag="--dtypes")
    chunks = parse_list(args.chunks, int, flag="--chunks")
    flop_steps = parse_list(args.flop_steps, int, flag="--flop-steps")
    micro = parse_list(args.micro_batch, int, flag="--micro-batch")
    if min(chunks) < 1 or min(flop_steps) < 1 or args.steps < 1 or min(micro) < 1 or args.validate_frames < 1:
        raise VidplugError("--chunks, --steps, --flop-steps, --micro-batch and --validate-frames must be >= 1")
    if args.budget_gib <= 0 or args.peak_tflops <= 0 or not 0 < args.mfu <= 1:
        raise VidplugError("--budget-gib and --peak-tflops must be > 0 and --mfu in (0, 1]")

    device = resolve_device(args.device)
    env = environment(device)
    fake = fake_mode()
    prior, cuda_prior = fake_prior(args.prior, fake), fake_prior(args.prior, fake, "cuda")
    params = sum(p.numel() for p in prior.parameters())
    n_whole = 3 if prior.latent else 2  # whole-chunk modes, 3 simulations each; micro-batched ones: 2 each
    n_sims = len(dtypes) * (n_whole * 3 + len(micro) * 2 * 2) + (0 if args.no_validate else len(dtypes) * 4 * 2)
    with tqdm(total=n_sims, desc="bench_memory", disable=args.quiet) as progress:
        flops = flop_table(prior, size, flop_steps, fake)
        plain_flops = flops["per_frame_iteration"].get(args.steps) or flop_table(
            prior, size, [args.steps], fake)["per_frame_iteration"][args.steps]
        rows = memory_rows(prior, cuda_prior, fake, size, steps=args.steps, dtypes=dtypes, chunks=chunks,
                           micro=micro, budget=args.budget_gib * GIB, cap=args.max_frames,
                           plain_flops=plain_flops, progress=progress)
        validation = [] if args.no_validate else validation_rows(
            args.validate_prior, vsize, args.validate_frames, device, steps=args.steps, dtypes=dtypes,
            micro=min(micro), progress=progress)
    result = {
        "environment": env,
        "estimate": "fake (meta) tensors standing for CPU tensors; the device ran the validation only",
        "settings": {"prior": args.prior, "prior_parameters": params, "size_hw": list(size), "steps": args.steps,
                     "flop_steps": flop_steps, "dtypes": dtypes, "chunks": chunks, "micro_batch": micro,
                     "budget_gib": args.budget_gib, "max_frames": args.max_frames, "peak_tflops": args.peak_tflops,
                     "mfu": args.mfu, "validate_prior": args.validate_prior, "validate_size_hw": list(vsize),
                     "validate_frames": args.validate_frames, "task": "sr4"},
        "parameter_bytes": sum(p.numel() * p.element_size() for p in prior.parameters()),
        "flops": flops, "memory": rows, "validation": validation,
    }
    atomic_write_json(Path(args.out) / "bench_memory.json", result)
    section = report(result, args.note)
    print(section)
    if not args.no_append:
        append_results(section)
    return result


def report(result: dict[str, Any], note: str | None) -> str:
    s, f, env = result["settings"], result["flops"], result["environment"]
    h, w = s["size_hw"]
    peak, mfu = s["peak_tflops"] * 1e12, s["mfu"]
    fwd, dec = f["forward"], f.get("decoder", 0)  # the decoder runs once per R (latent priors)
    flop_rows = [{"steps": k, "tflop": v / 1e12, "bwd_over_fwd": (v - int(k) * fwd - dec) / (int(k) * fwd + dec),
                  "at_peak": peak / v, "at_mfu": mfu * peak / v} for k, v in f["per_frame_iteration"].items()]
    mem_rows = [{**r, **{f"peak_{t}": v for t, v in r["peak_gib"].items()},
                 "largest": str(r["largest_frames"]) if r["largest_frames"] < s["max_frames"] else f">= {s['max_frames']}",
                 "tflop": r["flops_per_frame_iteration"] / 1e12,
                 "at_mfu": mfu * peak / r["flops_per_frame_iteration"]} for r in result["memory"]]
    worst_check = max(r["check_relative_error"] or 0.0 for r in result["memory"])
    lines = [
        f"### bench_memory: prior {s['prior']} ({s['prior_parameters'] / 1e6:.1f} M parameters), {h}x{w} frames, "
        "SR x4: ESTIMATES on fake (meta) tensors, not GPU measurements",
        "",
        env_line(env) + f" (the {env['device_type'].upper()} ran only the validation).",
        f"One network forward at {h}x{w}: **{fwd / 1e12:.3f} TFLOP** ({fwd / 2e12:.3f} T multiply-adds; "
        f"FlopCounterMode counts 2 FLOPs per multiply-add)"
        + (f"; the VAE decoder, once per R(z): **{dec / 1e12:.3f} TFLOP**" if dec else "")
        + f". Weights: {gib(result['parameter_bytes']):.2f} GiB fp32. Ideal rates at {s['peak_tflops']:g} TFLOP/s peak.",
        "",
        markdown_table(flop_rows, [
            ("steps", "K", ""), ("tflop", "model TFLOP / frame-it (K fwd" + (" + decoder" if dec else "") + " + bwd)", ".2f"),
            ("bwd_over_fwd", "backward / forward", ".2f"),
            ("at_peak", "frame-it/s at 100% MFU", ".1f"), ("at_mfu", f"frame-it/s at {mfu:.0%} MFU", ".1f")]),
        "",
        f"Peak memory of one iteration, K={s['steps']}, in GiB (weights, seeds, Adam state and every live tensor; "
        "bf16 = autocast with CUDA's op lists). Each phase of the iteration has a peak affine in T, fitted through "
        "simulations at two chunk sizes (1 and 2 frames; 2m and 3m micro-batched); the iteration's peak is the "
        f"largest. Checked against a simulation at T={max(s['chunks'] + [3])}: off by {worst_check:.2%} at most. "
        "Executed FLOPs include recomputation; the rate is at that share of the peak.",
        "",
        markdown_table(mem_rows, [
            ("dtype", "dtype", ""), ("mode", "mode", ""), ("saved_gib_per_frame", "saved GiB / frame", ".2f"),
            ("saved_fixed_gib", "saved fixed GiB", ".2f"), ("frames_in_graph", "frames in graph", ""),
            *[(f"peak_{t}", f"T={t}", ".1f") for t in s["chunks"]],
            ("gib_per_added_frame", "GiB / added frame", ".3f"),
            ("largest", f"largest T in {s['budget_gib']:g} GiB", ""),
            ("tflop", "executed TFLOP / frame-it", ".2f"), ("at_mfu", f"frame-it/s at {mfu:.0%} of peak", ".1f")]),
    ]
    if result["validation"]:
        vh, vw = s["validate_size_hw"]
        v = result["validation"]
        lines += [
            "",
            f"Validation: prior {s['validate_prior']}, {s['validate_frames']} frames of {vh}x{vw}, K={s['steps']}, "
            f"on {env['device_type'].upper()}; one iteration after one warm-up, MiB above the memory at its start. "
            f"Measured: {v[0]['method']}. Per frame: the change from {v[0]['frames'][0]} to {v[0]['frames'][1]} "
            "frames divided by the frames added.",
            "",
            markdown_table(v, [
                ("dtype", "dtype", ""), ("mode", "mode", ""), ("saved_mib", "saved act. (estimate)", ".1f"),
                ("estimate_mib", "peak rise (estimate)", ".1f"), ("real_live_mib", "peak rise, real tensors", ".1f"),
                ("measured_mib", "measured rise", ".1f"), ("estimate_over_measured", "estimate / measured", ".3f"),
                ("estimate_mib_per_frame", "per frame: estimate", ".1f"),
                ("measured_mib_per_frame", "per frame: measured", ".1f"),
                ("per_frame_ratio", "per frame: estimate / measured", ".3f")]),
        ]
    if note:
        lines += ["", note]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--prior", default="adm-random", choices=BENCH_PRIORS[1:], help="random-weight prior to estimate")
    p.add_argument("--size", default="256x256", help="HEIGHTxWIDTH of the frames (default 256x256)")
    p.add_argument("--steps", type=int, default=3, help="DDIM steps K of the memory estimate (default 3)")
    p.add_argument("--flop-steps", default="2,3,4", help="DDIM steps for the FLOP table, comma-separated")
    p.add_argument("--dtypes", default="fp32,bf16", help="fp32,bf16: network precision (bf16 = autocast)")
    p.add_argument("--chunks", default="1,2,4,8,16,32", help="chunk sizes T to predict the peak for")
    p.add_argument("--micro-batch", default="1,4", help="frames m per micro-batch, comma-separated (default 1,4)")
    p.add_argument("--budget-gib", type=float, default=80.0, help="device memory to fit in, GiB (default 80)")
    p.add_argument("--max-frames", type=int, default=1024, help="largest chunk size searched")
    p.add_argument("--peak-tflops", type=float, default=790.0, help="device peak, TFLOP/s (default: the issue's "
                                                                     "790 for H100 bf16)")
    p.add_argument("--mfu", type=float, default=0.4, help="model FLOP utilisation for the ideal rates (0.4)")
    p.add_argument("--device", default="cpu", help="where the validation runs: cpu | cuda | cuda:N (the estimate "
                                                    "itself never uses a device)")
    p.add_argument("--validate-prior", default="tiny-random", choices=BENCH_PRIORS[1:])
    p.add_argument("--validate-size", default="64x128", help="HEIGHTxWIDTH of the CPU validation")
    p.add_argument("--validate-frames", type=int, default=4, help="frames of the CPU validation")
    p.add_argument("--no-validate", action="store_true", help="skip the CPU validation")
    add_report_args(p, "directory for bench_memory.json")
    return p


def main(argv: list[str] | None = None) -> int:
    return bench_main("bench_memory", build_parser, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
