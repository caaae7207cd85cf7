"""`minidocker serve`: answer the Docker Engine API (compat/server/) until stopped."""
from __future__ import annotations

import signal
import sys


def cmd_serve(args) -> int:
    import os
    from ..server.core import DEFAULT_SOCKET, Server, parse_host
    default = DEFAULT_SOCKET
    if os.environ.get("MINIDOCKER_RUN_DIR") and os.getuid() == 0 and os.environ.get("MINIDOCKER_ROOTLESS"):
        # rootless mode: beside the rest of the user's runtime files, as rootless dockerd puts
        # docker.sock in $XDG_RUNTIME_DIR
        default = os.path.join(os.path.dirname(os.environ["MINIDOCKER_RUN_DIR"]), "minidocker.sock")
    hosts = args.host or [f"unix://{default}"]
    for h in hosts:
        kind, addr = parse_host(h)
        if kind == "tcp":  # dockerd's warning, for the same reason
            print(f"WARNING: API is accessible on http://{addr[0]}:{addr[1]} without encryption.\n"
                  "         Access to the remote API is equivalent to root access on the host.", file=sys.stderr)
    srv = Server(hosts, log=(lambda line: print(line, file=sys.stderr, flush=True)) if args.debug else None)
    srv.bind()

    def stop(signo, frame):
        srv.close()
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for h in hosts:
        print(f"API listen on {parse_host(h)[1] if h.startswith('unix://') else h[len('tcp://'):]}",
              file=sys.stderr, flush=True)
    srv.serve_forever()
    return 0


def register(sub) -> None:
    p = sub.add_parser("serve", help="Serve the Docker Engine API (docker -H unix:///run/minidocker.sock ...)")
    p.set_defaults(func=cmd_serve)
    p.add_argument("-H", "--host", action="append", default=[],
                   help="Socket(s) to listen on: unix:///path (default unix:///run/minidocker.sock) "
                        "or tcp://127.0.0.1:2375")
    p.add_argument("-D", "--debug", action="store_true", help="Print each request")
