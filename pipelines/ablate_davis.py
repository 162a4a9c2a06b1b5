"""Recipe: the temporal-consistency ablation on DAVIS 2017 val (SR x4): Base, +Semantic, +Pixel, +Semantic+Pixel,
+Shared seeds, and the bicubic and per-frame DiffPIR baselines, with identical seeds.

    python pipelines/ablate_davis.py --davis ROOT --out DIR [KEY=VALUE ...]

The full method is configs/tasks/sr4.yaml; the rows are listed, in order, by configs/ablation/table.yaml, one
runnable config file each beside it; first 16 frames at 256x256; DiffPIR with 50 steps. Extra ``KEY=VALUE`` arguments are config overrides of the
full method (e.g. ``prior.name=adm-imagenet256 device=cuda``). Resumable: rerun the same command.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vidplug.config import load_config
from vidplug.evaluation import DiffPIRSettings, ranked_table, run_ablation

REPO = Path(__file__).resolve().parents[1]
TASK_CONFIG = REPO / "configs" / "tasks" / "sr4.yaml"
READ = {"max_frames": 16, "size": 256}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--davis", required=True, help="DAVIS 2017 root")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides of the full method")
    args = parser.parse_args()
    full = load_config(TASK_CONFIG, args.overrides)
    out = run_ablation(args.davis, args.out, full, split="val", read=READ, shared_seeds=True,
                       diffpir=DiffPIRSettings(steps=50))
    print(ranked_table(out["table"]))


if __name__ == "__main__":
    main()
