"""Print the README's two set-up commands, as written: the book build, then the tests.

CI runs exactly these lines (see .ci/run), so the README and CI cannot drift apart. They
are the one-line ``bash`` blocks of the README's "Set-up on a fresh machine" section.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SECTION = "## Set-up on a fresh machine"


def setup_commands(readme: str) -> dict[str, str]:
    """``{"build": ..., "tests": ...}`` from the README's set-up section.

    Raises:
        ValueError: the section is missing, or does not hold one build and one test command.
    """
    if SECTION not in readme:
        raise ValueError(f"README.md has no {SECTION!r} section")
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = [b.strip() for b in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]
    commands = {}
    for block in blocks:
        if "\n" in block:
            raise ValueError(f"a set-up command must be one line, to be copied whole: {block!r}")
        kind = "build" if "jupyter-book build" in block else "tests" if "pytest" in block else None
        if kind is None or kind in commands:
            raise ValueError(f"unexpected set-up command in README.md: {block!r}")
        commands[kind] = block
    if sorted(commands) != ["build", "tests"]:
        raise ValueError(f"README.md's set-up section needs a build and a test command; "
                         f"found {sorted(commands)}")
    return commands


if __name__ == "__main__":
    readme = Path(__file__).resolve().parents[1] / "README.md"
    try:
        print(setup_commands(readme.read_text(encoding="utf8"))[sys.argv[1]])
    except (IndexError, KeyError):
        sys.exit("usage: python3 .ci/readme_setup.py build|tests")
    except ValueError as error:
        sys.exit(f"error: {error}")
