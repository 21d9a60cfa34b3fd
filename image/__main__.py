"""`python -m image build --image NAME[:TAG] [--target ml] [--build-arg KEY=VALUE]`: the image from the working tree,
on the stand-in base (cached), pip fed from the loopback wheelhouse."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from image.build import build_image
from image.docker import engine_problem


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m image", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the image on the stand-in base (cached)")
    build.add_argument("--image", required=True, help="the tag, e.g. flask-svc:dev")
    build.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE", help="a Dockerfile ARG")
    build.add_argument("--target", help="a Dockerfile stage, e.g. ml for the model-serving variant")
    opts = parser.parse_args(argv)
    problem = engine_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    extra = dict(arg.split("=", 1) for arg in opts.build_arg)
    built = build_image(opts.image, build_args=extra, target=opts.target)
    print(f"built {built.tag} ({built.id}) in {built.build_seconds:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
