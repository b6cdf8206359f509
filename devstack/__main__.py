"""The development stack: ``python -m devstack COMMAND``.

infra-up / infra-down   Kafka and PostgreSQL only (precedence: env, then local processes)
up / down               infra, roles, topics and the three services in the background;
                        writes .run/env
status                  what is running
"""

from __future__ import annotations

import argparse
import sys

from devstack import stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("infra-up", "infra-down", "up", "down", "status"):
        p = sub.add_parser(name)
        p.add_argument("--run-dir", default=None, help="state folder (default .run)")
    args = parser.parse_args(argv)
    return stack.COMMANDS[args.cmd](args.run_dir)


if __name__ == "__main__":
    sys.exit(main())
