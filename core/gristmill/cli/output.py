"""How the CLI prints: one-line errors and aligned tables."""

import sys


def fail(message: str, code: int = 2) -> int:
    print(f"gristmill: error: {message}", file=sys.stderr)
    return code


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
