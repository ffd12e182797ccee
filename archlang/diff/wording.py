"""Numbers and lists as the diff's prose prints them: `30.92 M`, `5.598` GMACs, `-6.0%`, `a
linear x2`, `mobileone x3`, `one BatchNorm`, `4 BatchNorms`."""

from __future__ import annotations


def count_of(k: int, word: str) -> str:
    """`one BatchNorm`, `4 BatchNorms`; "" for none."""
    return "" if k <= 0 else f"one {word}" if k == 1 else f"{k} {word}s"


def fold(texts: list[str]) -> list[str]:
    """Equal consecutive phrases once, with a count: `a linear x2`."""
    out: list[list] = []
    for t in texts:
        if out and out[-1][0] == t:
            out[-1][1] += 1
        else:
            out.append([t, 1])
    return [t if k == 1 else f"{t} x{k}" for t, k in out]


def counted(names: list[str]) -> str:
    """`mobileone x3`, `conv_bn x2`: block names in first-seen order, with counts."""
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return ", ".join(f"`{n}`" if k == 1 else f"`{n}` x{k}" for n, k in counts.items())


def listed(words: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


def millions(v: int) -> str:
    return f"{v / 1e6:.2f} M" if v >= 1e5 else f"{v / 1e3:.1f} k" if v >= 100 else str(v)


def giga(v: int) -> str:
    return f"{v / 1e9:.3f}"


def pct(a: int, b: int) -> str:
    return f"{100.0 * (b - a) / a:+.1f}%" if a else "n/a"


def pair(ta: str, tb: str, both: str = "both", sep: str = "") -> str:
    """`both X.` when A's and B's words agree, else `A X; B Y.` (`A: X; B: Y.` with sep ":")."""
    return f"{both} {ta}." if ta == tb else f"A{sep} {ta}; B{sep} {tb}."
