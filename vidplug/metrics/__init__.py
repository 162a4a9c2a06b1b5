"""Video-restoration metrics: PSNR and SSIM (fidelity), LPIPS (perceptual), warping error (temporal consistency).

:func:`compute_metrics` runs them all on one restored video against its ground truth and returns a JSON-ready dict.
"""

from vidplug.metrics.fidelity import psnr, rgb_to_y, ssim
from vidplug.metrics.lpips import lpips_distance
from vidplug.metrics.report import compute_metrics
from vidplug.metrics.warping import WARPING_ERROR_UNIT, warping_error

__all__ = ["WARPING_ERROR_UNIT", "compute_metrics", "lpips_distance", "psnr", "rgb_to_y", "ssim", "warping_error"]
