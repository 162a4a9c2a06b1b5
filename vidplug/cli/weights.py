"""``vidplug weights``: list every model file vidplug can use; ``vidplug weights fetch NAME`` downloads one."""

from __future__ import annotations

import argparse

from vidplug.errors import VidplugError


def register(sub) -> None:
    p = sub.add_parser("weights", help="list model weights (present?, path, size, checksum) or fetch one")
    p.add_argument("action", nargs="?", default="list", choices=["list", "fetch"])
    p.add_argument("name", nargs="?", help="catalog name to fetch (see the list)")
    p.add_argument("--checksum", action="store_true", help="compute sha256 of present files (slow for large ones)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vidplug import weights

    specs = weights.catalog()
    if args.action == "fetch":
        if not args.name or args.name not in specs:
            raise VidplugError(f"fetch needs a catalog name: one of {', '.join(sorted(specs))}")
        path = weights.require(specs[args.name], allow_download=True)
        print(f"{args.name}: {path}")
        return 0
    print(f"{'name':<22} {'present':<8} {'size':>10}  {'path'}")
    for name, spec in sorted(specs.items()):
        path = weights.find(spec)
        size = spec.human_size() if path is None else f"{path.stat().st_size / 2**20:.1f} MB"
        line = f"{name:<22} {'yes' if path else 'no':<8} {size:>10}  {spec.path}"
        if path is not None and args.checksum:
            line += f"  sha256 {weights.sha256_of(path)}"
        elif path is None:
            line += f"  <- {spec.url}"
        print(line)
    return 0
