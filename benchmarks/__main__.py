"""``python -m benchmarks``: the speed tables, then the accuracy tables.

``python -m benchmarks speed [options]`` or ``python -m benchmarks accuracy [options]`` runs
one of them; see ``--help`` of each.
"""

from __future__ import annotations

import sys

from . import accuracy, speed


def main(argv: list[str]) -> int:
    """Run the named benchmark (``speed`` or ``accuracy``) with its options, or both."""
    if argv and argv[0] in ("speed", "accuracy"):
        return {"speed": speed.main, "accuracy": accuracy.main}[argv[0]](argv[1:])
    if argv:
        print("usage: python -m benchmarks [speed|accuracy] [options]", file=sys.stderr)
        return 2
    return speed.main([]) or accuracy.main([])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
