"""The one error type every descriptor problem is reported as, and the dotted-path helper.

Owns: DescriptorError (what is wrong, where: source, line, field) and `path_str`, the single
formatting of field paths, shared by the loader (field_lines keys) and the validators (error fields)
so that one can be looked up in the other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_$-]+$")


def path_str(parts: Iterable[str | int]) -> str:
    """`["spec", "targets", 0]` -> `spec.targets[0]`; keys with dots or slashes are bracketed:
    `metadata.annotations["backstage.io/x"]` (otherwise the path would be ambiguous)."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += '["' + str(part).replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return out


@dataclass(eq=False)  # eq=False keeps exceptions hashable (logging/traceback machinery may hash them)
class DescriptorError(Exception):
    message: str
    source: str = ""
    line: int | None = None
    field: str = ""

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        return ": ".join(p for p in (where, self.field, self.message) if p)

    def __reduce__(self):  # picklable with all fields (Celery results, multiprocessing)
        return (type(self), (self.message, self.source, self.line, self.field))

    def as_dict(self) -> dict:
        return asdict(self)
