"""``python -m benchmarks``: the speed tables, the compute table, the accuracy tables, then
chapter 8's levers toward human level.

``python -m benchmarks speed|compute|accuracy|levers [options]`` runs one of them; see ``--help``
of each.
"""

from __future__ import annotations

import sys

from . import accuracy, compute, levers, speed

BENCHMARKS = {"speed": speed.main, "compute": compute.main, "accuracy": accuracy.main,
              "levers": levers.main}


def main(argv: list[str]) -> int:
    """Run the named benchmark with its options, or all of them in turn."""
    if argv and argv[0] in BENCHMARKS:
        return BENCHMARKS[argv[0]](argv[1:])
    if argv:
        print(f"usage: python -m benchmarks [{'|'.join(BENCHMARKS)}] [options]", file=sys.stderr)
        return 2
    for run in BENCHMARKS.values():
        code = run([])
        if code:
            return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
