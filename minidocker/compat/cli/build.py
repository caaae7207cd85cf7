"""`minidocker build`: the classic builder's output, step by step."""
from __future__ import annotations

import os
import sys

from ...errors import InvalidArgument


def cmd_build(args) -> int:
    from ..build.builder import Builder
    from ...engine.runtime import Runtime
    build_args = {}
    for item in args.build_arg:
        k, sep, v = item.partition("=")
        if not sep:  # --build-arg NAME takes NAME from the environment (or is unset)
            if k in os.environ:
                build_args[k] = os.environ[k]
            continue
        build_args[k] = v
    from .common import parse_labels
    labels = parse_labels(args.label, "--label")
    if args.context == "-":
        raise InvalidArgument("building from a tar on stdin is not supported; pass a directory")

    def emit(ev):
        if not args.quiet:
            sys.stdout.write(ev.get("stream", ""))
            sys.stdout.flush()
    rt = Runtime()
    builder = Builder(rt, args.context, dockerfile=args.file, tags=args.tag, build_args=build_args,
                      target=args.target, no_cache=args.no_cache, pull=args.pull, platform=args.platform,
                      network=args.network, labels=labels, on_event=emit)
    image_id = builder.build()
    if args.quiet:
        print(image_id)
    return 0


def register(sub, management: bool = False) -> None:
    p = sub.add_parser("build", help="Build an image from a Dockerfile")
    p.set_defaults(func=cmd_build)
    p.add_argument("-t", "--tag", action="append", default=[],
                   help="Name and optionally a tag in the 'name:tag' format")
    p.add_argument("-f", "--file", default=None, help="Name of the Dockerfile (Default is 'PATH/Dockerfile')")
    p.add_argument("--build-arg", action="append", default=[], help="Set build-time variables")
    p.add_argument("--target", default=None, help="Set the target build stage to build")
    p.add_argument("--no-cache", action="store_true", help="Do not use cache when building the image")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the build output and print image ID on success")
    p.add_argument("--progress", default="auto", choices=["auto", "plain", "tty"],
                   help="Set type of progress output (BuildKit's; the classic builder prints its steps anyway)")
    p.add_argument("--pull", action="store_true", help="Always attempt to pull a newer version of the image")
    p.add_argument("--platform", default=None, help="Set platform if server is multi-platform capable")
    p.add_argument("--network", default="default", help="Networking mode for the RUN instructions")
    p.add_argument("--label", action="append", default=[], help="Set metadata for an image")
    p.add_argument("context", help="The build context: a directory")
