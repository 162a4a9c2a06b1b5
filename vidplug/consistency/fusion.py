"""Multi-frame fusion: the pixel term's flow warping as a quadratic coupling inside damped least squares.

With flows fixed, ``L x = M_t (x_t - W(x_{t+1}, fw_t))`` over neighbouring pairs is linear in the frames (``W`` is
bilinear sampling), so ``|A x - y|^2 + weight |L x|^2 + damping |x - x0|^2`` is a linear least-squares problem over the
whole chunk: every frame is estimated from its own observation *and* its neighbours' observations warped onto it.
That is classical multi-frame restoration (multi-frame super-resolution for SR), and it is where a video method gets
detail no single frame holds. vidplug solves it by conjugate gradient before the diffusion solve (the start) and
after it (the measurement projection), re-estimating the flows from the current estimate between rounds. The start's
first flows may come from the observed frames instead (``first_flows``); :func:`warp_residual` scores a result
without ground truth, so that a caller can keep the more consistent of two (``consistency.fusion_flows_from=auto``).

With ``radius`` r > 1 the coupling also ties frames 2..r apart (``x_t`` to ``W(x_{t+d}, fw^d_t)``, flows estimated
between them directly, each distance at the same weight). With accurate flow it makes the k=7 temporal average far
better posed (the true flow on a synthetic clip: +3 dB; bikes, temporal, full method: +0.5 dB), but flows between
frames two apart err more: on the held-out bmx-trees and bigbuckbunny temporal lost 0.5-1.3 dB with it, so every
shipped setting keeps radius 1 (benchmarks/RESULTS.md, "Fusion radius").

``L^T L v`` is taken by automatic differentiation of ``|L v|^2 / 2`` (exact: torch's backward of ``grid_sample`` is
the adjoint of the bilinear warp), so no adjoint warp is written by hand. The sums are raw (not averaged), like the
data term's, so ``weight`` does not depend on the frame size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from vidplug.consistency.warp import correspondence_mask, flow_warp, uncoupled_pairs
from vidplug.errors import VidplugError
from vidplug.physics.base import VideoOperator

if TYPE_CHECKING:
    from vidplug.consistency.flow import FlowModel


class FlowCoupling:
    """``weight * |L x|^2`` with ``L x = M_t (x_t - W(x_{t+s}, fw_t))`` for ``t < T - s``, as a normal operator.

    Args:
        fw (Tensor): ``(T-s, 2, H, W)`` flow from frame t to frame t+s, in pixels.
        mask (Tensor): ``(T-s, 1, H, W)``, 1 where frame t's pixel is seen in frame t+s (occlusions masked).
        weight: the coupling's weight against the (raw, summed) data term.
        step: ``s``, the distance between the coupled frames (1: neighbours).
    """

    def __init__(self, fw: Tensor, mask: Tensor, weight: float, step: int = 1) -> None:
        if fw.ndim != 4 or fw.shape[1] != 2 or mask.shape != (fw.shape[0], 1, *fw.shape[-2:]):
            raise VidplugError(f"flow coupling needs fw (T-s, 2, H, W) and mask (T-s, 1, H, W), got "
                               f"{tuple(fw.shape)} and {tuple(mask.shape)}")
        if not weight >= 0 or step < 1:
            raise VidplugError(f"the fusion weight must be >= 0 and the step >= 1, got {weight} and {step}")
        self.fw, self.mask, self.weight, self.step = fw.detach().float(), mask.detach().float(), float(weight), step

    @classmethod
    @torch.no_grad()
    def from_frames(cls, flow_model: FlowModel, frames: Tensor, weight: float, step: int = 1,
                    min_coverage: float = 0.0, motion_boundaries: bool = True) -> FlowCoupling:
        """Flows and the forward-backward occlusion mask between the frames ``step`` apart of ``frames (T, C, H,
        W)`` in [0, 1] (T > step), motion boundaries masked too unless ``motion_boundaries`` is False; pairs with
        correspondences on less than ``min_coverage`` of the frame are not coupled
        (:func:`~vidplug.consistency.warp.correspondence_mask`: scene cuts)."""
        frames = frames.detach().clamp(0, 1)
        fw, bw = (f.to(frames.device) for f in flow_model.flow_pair(frames, step))
        return cls(fw, correspondence_mask(fw, bw, min_coverage, motion_boundaries), weight, step)

    def uncoupled(self) -> list[int]:
        """The pairs ``t`` (frames ``t`` and ``t + step``) with no coupled pixel: a scene cut, or no correspondence."""
        return uncoupled_pairs(self.mask)

    def residual(self, x: Tensor) -> Tensor:
        """``L x`` ``(T-s, C, H, W)``: each frame minus the frame ``s`` later warped onto it, occluded pixels zero."""
        s = self.step
        return (x[:-s] - flow_warp(x[s:], self.fw.to(x))) * self.mask.to(x)

    def normal(self, v: Tensor) -> Tensor:
        """``weight * L^T L v`` ``(T, C, H, W)``: the coupling's part of the normal equations."""
        with torch.enable_grad():
            v = v.detach().requires_grad_(True)
            energy = 0.5 * self.residual(v).pow(2).sum()
            (grad,) = torch.autograd.grad(energy, v)
        return self.weight * grad


def couplings(flow_model: FlowModel, frames: Tensor, weight: float, radius: int = 1,
              min_coverage: float = 0.0, motion_boundaries: bool = True) -> list[FlowCoupling]:
    """The flow couplings of the distances ``d = 1..radius`` (fewer where the window is shorter), flows estimated on
    ``frames (T, C, H, W)``, pairs under ``min_coverage`` uncoupled; empty when there is nothing to couple (one frame,
    weight 0). Their normal operators add up: ``v -> sum_d weight L_d^T L_d v``."""
    if weight <= 0:
        return []
    steps = range(1, min(int(radius), frames.shape[0] - 1) + 1)
    return [FlowCoupling.from_frames(flow_model, frames, weight, d, min_coverage, motion_boundaries) for d in steps]


def fuse(op, y: Tensor, anchor: Tensor, start: Tensor, flow_model: FlowModel, *, weight: float, rounds: int,
         steps: int, damping: float, radius: int = 1, first_flows: Tensor | None = None,
         min_coverage: float = 0.0, motion_boundaries: bool = True, report: dict | None = None) -> Tensor:
    """Flow-coupled damped least squares: ``rounds`` times, flows from the current estimate, then ``steps`` CG steps
    on ``|A x - y|^2 + weight sum_d |L_d x|^2 + damping |x - anchor|^2`` from it (``d = 1..radius``).

    Args:
        op: the data operator (``A`` and ``A_adjoint``, e.g. a chunk's :class:`~vidplug.solver.chunk_problem.
            CroppedOperator`); ``y`` its observation.
        anchor (Tensor): ``(T, C, H, W)`` the damping pulls towards (the pseudo-inverse, or the diffusion result).
        start (Tensor): ``(T, C, H, W)`` in [0, 1] where the first round starts and its flows are estimated.
        flow_model: estimates the flows (RAFT, or OpenCV DIS offline).
        first_flows (Tensor, optional): ``(T, C, H, W)`` frames the first round's flows are estimated on instead of
            ``start`` (e.g. the observed frames); later rounds estimate them on the current estimate.
        min_coverage: pairs whose correspondences cover less of the frame are not coupled (scene cuts).
        motion_boundaries: mask the flows' motion boundaries as well as the forward-backward check's failures
            (:func:`~vidplug.consistency.warp.occlusion_mask`).
        report (dict, optional): receives ``uncoupled_pairs``, the pairs ``[t, t + d]`` (window frame indices) that
            the last round left uncoupled.

    Returns:
        ``(T, C, H, W)`` clamped to [0, 1]. With fewer than 2 frames, or ``weight`` 0, plain damped least squares.
    """
    x = start
    with torch.no_grad():
        for i in range(max(int(rounds), 1)):
            source = first_flows if i == 0 and first_flows is not None else x
            coupled = couplings(flow_model, source, weight, radius, min_coverage, motion_boundaries)
            normal = (lambda v, cs=coupled: sum(c.normal(v) for c in cs)) if coupled else None
            x = VideoOperator.least_squares(op, y, anchor, steps, damping, regulariser=normal, start=x).clamp(0, 1)
    if report is not None:
        report["uncoupled_pairs"] = [[t, t + c.step] for c in coupled for t in c.uncoupled()]
    return x


@torch.no_grad()
def warp_residual(flow_model: FlowModel, frames: Tensor, min_coverage: float = 0.0,
                  motion_boundaries: bool = True) -> float:
    """How far ``frames (T, C, H, W)`` in [0, 1] are from one consistently moving scene, without ground truth: the
    mean squared residual ``|x_t - W(x_{t+1}, fw_t)|^2`` over the pixels with a correspondence, flows estimated on
    the frames themselves, pairs under ``min_coverage`` left out as the fusion leaves them uncoupled (scene cuts).
    Lower is more consistent; 0.0 for one frame."""
    if frames.shape[0] < 2:
        return 0.0
    coupling = FlowCoupling.from_frames(flow_model, frames, 1.0, min_coverage=min_coverage,
                                        motion_boundaries=motion_boundaries)
    valid = coupling.mask.sum().clamp_min(1.0) * frames.shape[1]
    return float(coupling.residual(frames).pow(2).sum() / valid)
