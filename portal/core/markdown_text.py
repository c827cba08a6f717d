"""CommonMark shown as plain text: for tables and lists that show a description or an answer in one
line (the pages that show it whole render it)."""

from __future__ import annotations

import re

# CommonMark's inline marks: a code span, strong or emphasis by * or _, a link or image (its text kept).
# Callers pass a bounded text (the lazy groups make a long run of unmatched marks quadratic).
_INLINE_MARKS = re.compile(r"`+([^`]+?)`+|\*\*(.+?)\*\*|__(.+?)__|(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"
                           r"|(?<!\w)_(?!\s)(.+?)(?<!\s)_(?!\w)|!?\[([^\]]*)\]\([^)]*\)")


def plain(text: str) -> str:
    """The text a reader of the rendered Markdown would see (`` `a` `` → a, **b** → b, [c](…) → c), on one
    line. The caller escapes it (templates do)."""
    if not isinstance(text, str):
        return ""
    for _ in range(3):  # nested marks (**`x`**) come off one layer a pass
        stripped = _INLINE_MARKS.sub(lambda m: next(g for g in m.groups() if g is not None), text)
        if stripped == text:
            break
        text = stripped
    return " ".join(text.split())
