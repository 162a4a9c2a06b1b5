"""Optical flow between frames: torchvision's RAFT-large, with OpenCV's DIS as the weight-free fallback, and OpenCV's
Farneback (weight-free, an option for blurred estimates: see :class:`FarnebackFlow`).

Every flow model maps two batches of frames ``(N, 3, H, W)`` in [0, 1] to the flow from the first to the second,
``(N, 2, H, W)`` in pixels, channel 0 = x (width), channel 1 = y (height), on the inputs' device. The convention is
the one :func:`vidplug.consistency.warp.flow_warp` expects: with ``flow = model(a, b)``, ``flow_warp(b, flow)`` is
frame ``b`` aligned to frame ``a``.

Flow is a measurement here (warping error, pixel-consistency targets), never differentiated through, so every model
runs under ``torch.no_grad()``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidplug.errors import MissingWeightsError, VidplugError
from vidplug.weights import WeightSpec, register, require, torch_hub_checkpoints

log = logging.getLogger(__name__)

# torchvision's Raft_Large_Weights.DEFAULT (= C_T_SKHT_V2: FlyingChairs + FlyingThings, fine-tuned on Sintel mix).
# Same file name and directory as torchvision's own download, so a copy fetched by torchvision is found and reused.
RAFT_LARGE = register(
    WeightSpec(
        name="raft-large",
        filename="raft_large_C_T_SKHT_V2-ff5fadd5.pth",
        url="https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth",
        size_bytes=21_106_607,
        description="RAFT-large optical flow (torchvision Raft_Large_Weights.DEFAULT)",
        cache_dir=torch_hub_checkpoints,
        sha256="ff5fadd56d26b40647388883af1547351ea17868b765c05b27231e72dd16a322",
    )
)


class FlowModel(ABC):
    """Dense optical flow between two batches of frames.

    Subclasses implement :meth:`_flow`; :meth:`__call__` checks shapes, turns grayscale into RGB and disables grad.
    """

    name: str = "flow"  # identifier shown in reports

    def __call__(self, src: Tensor, dst: Tensor) -> Tensor:
        """Flow from ``src`` to ``dst``.

        Args:
            src (Tensor): (n, c, h, w) frames in [0, 1], c = 3 (or 1: repeated to RGB).
            dst (Tensor): (n, c, h, w) frames in [0, 1], same shape as ``src``.

        Returns:
            Tensor: (n, 2, h, w) float32 flow in pixels on ``src.device``; ``flow_warp(dst, flow)`` ~ ``src``.
        """
        if src.ndim != 4 or src.shape != dst.shape or src.shape[1] not in (1, 3):
            raise VidplugError(
                f"optical flow needs two (N, 3, H, W) batches of the same shape, got {tuple(src.shape)} and "
                f"{tuple(dst.shape)}; pass RGB (or single-channel) frames of equal size"
            )
        if src.shape[1] == 1:
            src, dst = src.expand(-1, 3, -1, -1), dst.expand(-1, 3, -1, -1)
        with torch.no_grad():
            flow = self._flow(src.float().clamp(0, 1), dst.float().clamp(0, 1))
        return flow.to(device=src.device, dtype=torch.float32)

    @abstractmethod
    def _flow(self, src: Tensor, dst: Tensor) -> Tensor:
        """(n, 3, h, w), (n, 3, h, w) in [0, 1] -> (n, 2, h, w) flow from src to dst."""

    def flow_pair(self, frames: Tensor, step: int = 1) -> tuple[Tensor, Tensor]:
        """Forward and backward flow between frames ``step`` apart (consecutive by default) of one video, both
        directions in one batch.

        Args:
            frames (Tensor): (t, c, h, w) video in [0, 1], t > step >= 1.

        Returns:
            tuple[Tensor, Tensor]: ``fw`` (t-step, 2, h, w) with ``fw[i]`` = flow(i -> i+step), and ``bw``
            (t-step, 2, h, w) with ``bw[i]`` = flow(i+step -> i).
        """
        if step < 1:
            raise VidplugError(f"flow_pair's step must be >= 1 frame, got {step}")
        if frames.ndim != 4 or frames.shape[0] <= step:
            raise VidplugError(
                f"flow_pair needs a (T, C, H, W) video with at least {step + 1} frames (step {step}), got shape "
                f"{tuple(frames.shape)}"
            )
        n = frames.shape[0] - step
        src = torch.cat((frames[:-step], frames[step:]))  # (2n, c, h, w): forward pairs, then backward pairs
        dst = torch.cat((frames[step:], frames[:-step]))
        flow = self(src, dst)  # (2n, 2, h, w)
        return flow[:n], flow[n:]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class RAFTFlow(FlowModel):
    """torchvision's RAFT-large (``Raft_Large_Weights.DEFAULT``), weights found through :mod:`vidplug.weights`.

    Args:
        device: where the network runs (inputs on other devices are moved there and the flow moved back).
        iterations: RAFT's recurrent refinement steps (torchvision's default 12).
        batch_size: frame pairs per forward pass (bounds memory on long or large videos).
        allow_download: passed to :func:`vidplug.weights.require`; None = download unless offline.

    Raises:
        MissingWeightsError: the checkpoint is not cached and cannot be downloaded.
    """

    name = "raft_large"
    multiple = 8  # RAFT's feature encoder downsamples by 8
    min_size = 128  # smaller frames are replicate-padded up to this and cropped back

    def __init__(
        self,
        device: str | torch.device = "cpu",
        iterations: int = 12,
        batch_size: int = 8,
        allow_download: bool | None = None,
    ) -> None:
        from torchvision.models.optical_flow import Raft_Large_Weights, raft_large

        path = require(RAFT_LARGE, allow_download=allow_download)
        self.device = torch.device(device)
        self.iterations = int(iterations)
        self.batch_size = max(1, int(batch_size))
        # weights=None + our own load: the path logic (cache dir, offline message) stays in vidplug.weights
        net = raft_large(weights=None, progress=False)
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.net = net.eval().to(self.device)
        self.preprocess = Raft_Large_Weights.DEFAULT.transforms()  # torchvision's preset: [0, 1] -> [-1, 1]

    def _flow(self, src: Tensor, dst: Tensor) -> Tensor:
        n, _, h, w = src.shape
        # RAFT needs sizes divisible by 8 and at least 128 (its correlation pyramid halves the 1/8 map 3 times)
        pad_h = max((-h) % self.multiple, self.min_size - h)
        pad_w = max((-w) % self.multiple, self.min_size - w)
        # pad both sides (as RAFT's own InputPadder) so the border is treated symmetrically, then crop back
        pad = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
        out = []
        for i in range(0, n, self.batch_size):
            a, b = self.preprocess(src[i : i + self.batch_size], dst[i : i + self.batch_size])
            a = F.pad(a.to(self.device), pad, mode="replicate")  # (b, 3, h + pad_h, w + pad_w) in [-1, 1]
            b = F.pad(b.to(self.device), pad, mode="replicate")
            flows = self.net(a, b, num_flow_updates=self.iterations)
            flow = flows[-1]  # the last refinement is the estimate; earlier ones exist for the training loss
            out.append(flow[:, :, pad[2] : pad[2] + h, pad[0] : pad[0] + w])
        return torch.cat(out)


class DISFlow(FlowModel):
    """OpenCV's DIS optical flow (Kroeger et al. 2016), medium preset, on 8-bit grayscale; needs no weights.

    The medium preset's finest pyramid level is half the frame size, and the frame size sets its coarsest level
    (about 4 patches wide): at 128x128 that is a single level, at 64x64. With ``full_resolution`` the flow is also
    estimated down to the full size (finest scale 0, two levels at 128x128), and each pixel keeps whichever of the
    two flows warps the second frame onto the first with the lower residual over its 7x7 neighbourhood (a GT-free
    choice between candidate flows, as in fusion-flow methods), the choice averaged over 3x3 pixels so that the flow
    has no step where it switches (the forward-backward check and the motion-boundary test reject such steps; held
    out, +0.16 dB on nine temporal segments against the hard choice, session 12). On the `tiny` prior's temporal task
    it won 1.5-1.6 dB where the motion is large (bikes, every 3rd frame) and lost 0.2-2.3 dB on temporal+deblur's
    blurred estimates (benchmarks/RESULTS.md, "Issue 18, session 11"), so configs/priors/tiny.yaml turns it on for
    temporal only. The warping-error metric always runs the medium preset, unsmoothed
    (:meth:`vidplug.models.Models.metrics_flow`).

    With ``smoothing`` (a Gaussian's standard deviation in pixels) the flow field is smoothed last. DIS fits each
    patch on its own, and on blurred or noisy estimates neighbouring patches disagree by pixels, which the fusion
    copies into the estimate. No shipped setting uses it: at sigma 3 the `tiny` prior's full method gained on the
    tuning clip (bikes, temporal at its frame rate: +0.04 to +0.18 dB) but lost on the held-out clips
    (bmx-trees and bigbuckbunny, temporal and inpainting: -0.83 to +0.18 dB, -0.30 on average; benchmarks/RESULTS.md,
    "Issue 18, session 15").
    """

    def __init__(self, preset: int | None = None, full_resolution: bool = False, smoothing: float = 0.0) -> None:
        import cv2

        self.preset = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM if preset is None else preset
        self.full_resolution = bool(full_resolution)
        self.smoothing = float(smoothing)

    @property
    def name(self) -> str:
        return "opencv_dis_full" if self.full_resolution else "opencv_dis"

    def _flow(self, src: Tensor, dst: Tensor) -> Tensor:
        gray_src, gray_dst = _to_gray_uint8(src), _to_gray_uint8(dst)  # (n, h, w) uint8
        flows = [self._pair(a, b) for a, b in zip(gray_src, gray_dst, strict=True)]  # each (h, w, 2) float32
        return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2)  # (n, 2, h, w)

    def _pair(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        import cv2

        flow = self._dis(a, b)
        if self.smoothing > 0:
            flow = cv2.GaussianBlur(flow, (0, 0), self.smoothing, borderType=cv2.BORDER_REPLICATE)
        return flow

    def _dis(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        import cv2

        dis = cv2.DISOpticalFlow_create(self.preset)  # one per call: the object holds per-run state
        half = dis.calc(a, b, None)
        if not self.full_resolution:
            return half
        dis = cv2.DISOpticalFlow_create(self.preset)
        dis.setFinestScale(0)
        full = dis.calc(a, b, None)
        keep_full = (_local_warp_residual(a, b, full) < _local_warp_residual(a, b, half)).astype(np.float32)
        share = cv2.blur(keep_full, (3, 3))[..., None]  # the choice averaged over 3x3: no flow step where it switches
        return (share * full + (1.0 - share) * half).astype(np.float32)


def _local_warp_residual(a: np.ndarray, b: np.ndarray, flow: np.ndarray, window: int = 7) -> np.ndarray:
    """``|a - b(p + flow(p))|`` (grayscale uint8 frames, flow (h, w, 2) from a to b) averaged over ``window`` x
    ``window`` neighbourhoods; (h, w) float32."""
    import cv2

    h, w = a.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    warped = cv2.remap(b.astype(np.float32), gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    return cv2.blur(np.abs(a.astype(np.float32) - warped), (window, window))


class FarnebackFlow(FlowModel):
    """OpenCV's Farneback flow (polynomial expansion, Farneback 2003) on 8-bit grayscale; needs no weights.

    It fits a quadratic polynomial to each ``poly_n``-pixel neighbourhood and averages over ``winsize``, so smooth
    structure carries it where DIS's patch matching on gradients has little left: on box-blurred frames it errs less
    than DIS (a test). For blurred estimates it is worth trying, but no shipped setting uses it: with the `tiny` prior
    on temporal+deblur it won 0.7 dB on bikes and lost 0.1 / 0.8 dB on bmx-trees / bigbuckbunny, and prior-free it
    lost 0.2-0.5 dB on bikes' sharper SR, temporal and inpainting estimates (benchmarks/RESULTS.md, "Issue 18, session
    6"). Parameters: OpenCV's documented example (pyramid scale 0.5, 3 levels, window 15, 3 iterations, poly_n 5,
    poly_sigma 1.2).
    """

    name = "opencv_farneback"

    def _flow(self, src: Tensor, dst: Tensor) -> Tensor:
        import cv2

        gray_src, gray_dst = _to_gray_uint8(src), _to_gray_uint8(dst)  # (n, h, w) uint8
        flows = [cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
                 for a, b in zip(gray_src, gray_dst, strict=True)]  # each (h, w, 2) float32
        return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2)  # (n, 2, h, w)


def _to_gray_uint8(x: Tensor) -> np.ndarray:
    """(n, 3, h, w) in [0, 1] -> (n, h, w) uint8 luma, as OpenCV's flow methods take."""
    import cv2

    rgb = (x * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()  # (n, h, w, 3)
    return np.stack([cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2GRAY) for im in rgb])


FLOW_MODELS = ("auto", "raft", "dis", "farneback")
METRIC_FLOW_MODELS = ("auto", "raft", "dis")  # the warping error's: Lai et al. measure with a learned flow (RAFT here)


def load_flow_model(name: str = "auto", device: str | torch.device = "cpu", dis_full_resolution: bool = False
                    ) -> FlowModel:
    """Build a flow model by name.

    Args:
        name: ``"raft"`` (RAFT-large; raises :class:`MissingWeightsError` when its weights are absent offline),
            ``"dis"`` (OpenCV DIS), ``"farneback"`` (OpenCV Farneback), or ``"auto"`` (RAFT when its weights are
            cached or downloadable, else DIS with a logged warning naming the file to place and where).
            ``"raft_large"`` / ``"opencv_dis"`` / ``"opencv_farneback"`` (the models' report names) are accepted too.
        device: where RAFT runs; DIS runs on the CPU and returns flow on the inputs' device.
        dis_full_resolution: DIS (by name or as ``auto``'s fallback) also at full resolution
            (:class:`DISFlow`).

    Returns:
        FlowModel: its ``.name`` (``"raft_large"``, ``"opencv_dis"``, ``"opencv_farneback"``) is what reports show.
    """
    key = {"raft_large": "raft", "opencv_dis": "dis", "opencv_farneback": "farneback"}.get(name, name)
    if key == "raft":
        return RAFTFlow(device)
    if key == "dis":
        return DISFlow(full_resolution=dis_full_resolution)
    if key == "farneback":
        return FarnebackFlow()
    if key == "auto":
        try:
            return RAFTFlow(device)
        except MissingWeightsError:
            log.warning(
                "optical flow: using OpenCV DIS because RAFT-large weights are missing; for RAFT place %s (%s, from "
                "%s) at %s",
                RAFT_LARGE.filename,
                RAFT_LARGE.human_size(),
                RAFT_LARGE.url,
                RAFT_LARGE.path,
            )
            return DISFlow(full_resolution=dis_full_resolution)
    raise VidplugError(f"unknown optical flow model '{name}'; choose one of: {', '.join(FLOW_MODELS)}")
