"""``vidplug view DIR``: serve a run folder's report pages on 127.0.0.1 and print the URL."""

from __future__ import annotations

import argparse
import time


def register(sub) -> None:
    p = sub.add_parser("view", help="serve a run folder's report.html on 127.0.0.1 and print its URL",
                       description="Serve DIR (a folder written by restore --report, demo, eval or ablate) on "
                                   "127.0.0.1 only. On a remote machine, forward the port: ssh -L PORT:127.0.0.1:PORT "
                                   "user@host, then open the printed URL on your own machine.")
    p.add_argument("dir", help="run folder holding report.html (or other *.html pages)")
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0 = any free port; default 8000)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vidplug.report_html.server import start_server

    server, url = start_server(args.dir, args.port)
    port = server.server_address[1]
    print(f"serving {args.dir} at {url}  (Ctrl-C to stop)", flush=True)
    print(f"from another machine: ssh -L {port}:127.0.0.1:{port} USER@THIS_HOST, then open {url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0
