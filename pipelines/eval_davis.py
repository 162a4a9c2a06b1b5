"""Recipe: DAVIS 2017 val evaluation of the full method (SR x4), the zero-shot video papers' protocol.

    python pipelines/eval_davis.py --davis ROOT --out DIR [KEY=VALUE ...]

Settings: configs/tasks/sr4.yaml (prior, solver, consistency weights), first 16 frames, center crop + resize to
256x256. Extra ``KEY=VALUE`` arguments are config overrides (e.g. ``prior.name=adm-imagenet256 device=cuda``).
Resumable: rerun the same command. The same run from the command line:
``vidplug eval --davis ROOT --out DIR --config configs/tasks/sr4.yaml --max-frames 16 --size 256``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vidplug.config import load_config
from vidplug.evaluation import evaluate_davis

REPO = Path(__file__).resolve().parents[1]
TASK_CONFIG = REPO / "configs" / "tasks" / "sr4.yaml"
READ = {"max_frames": 16, "size": 256}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--davis", required=True, help="DAVIS 2017 root")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args()
    cfg = load_config(TASK_CONFIG, args.overrides)
    out = evaluate_davis(args.davis, args.out, cfg, split="val", read=READ)
    print(f"mean over {len(out['sequences'])} sequences: {out['mean']} -> {args.out}/report.md")


if __name__ == "__main__":
    main()
