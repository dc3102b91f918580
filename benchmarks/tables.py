"""The plain-text tables every benchmark prints, and the words of their verdicts."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None
) -> str:
    """A plain-text table.

    Args:
        headers: the column names.
        rows: the cells, one sequence per row.
        align: one letter per column, "l" (left) or "r" (right); by default the first
            column is left-aligned and the others, numbers, right-aligned.
    """
    align = align or "l" + "r" * (len(headers) - 1)
    if len(align) != len(headers) or set(align) - {"l", "r"}:
        raise ValueError(f"align needs one 'l' or 'r' per column ({len(headers)}), got {align!r}")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).ljust(w) if a == "l" else str(c).rjust(w)
            for c, w, a in zip(cells, widths, align, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def times(ratio: float) -> str:
    """``2.0`` -> "2.0x faster", ``0.5`` -> "2.0x slower"."""
    return f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"


def verdict(ok: bool) -> str:
    """"met" or "NOT met", for a target."""
    return "met" if ok else "NOT met"

