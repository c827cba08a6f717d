"""Path rules of the scaffolder: every file a run reads comes from inside the template's folder, and
every file it writes lands inside the run's workspace. Symlinks are never followed; `..`, absolute
paths and `.git` internals are refused with a message that names the offending path."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

__all__ = ["PathError", "inside", "safe_join", "walk_files", "check_relative"]


class PathError(Exception):
    pass


def check_relative(rel: str, *, what: str = "path") -> PurePosixPath:
    """A relative POSIX path with no `..`, no absolute root, no drive, no NUL, no `.git` segment."""
    text = str(rel).replace("\\", "/")
    if "\x00" in text:
        raise PathError(f"{what} {rel!r} contains a NUL byte")
    pure = PurePosixPath(text)
    if pure.is_absolute() or text.startswith("~") or (len(text) > 1 and text[1] == ":"):
        raise PathError(f"{what} {rel!r} is absolute; only paths inside the workspace are allowed")
    parts = [p for p in pure.parts if p not in ("", ".")]
    if ".." in parts:
        raise PathError(f"{what} {rel!r} leaves the workspace ('..')")
    if ".git" in parts:
        raise PathError(f"{what} {rel!r} writes into .git, which templates may not do")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def inside(base: Path, candidate: Path) -> bool:
    base_real = os.path.realpath(base)
    real = os.path.realpath(candidate)
    return real == base_real or real.startswith(base_real.rstrip(os.sep) + os.sep)


def safe_join(base: Path, rel: str, *, what: str = "path") -> Path:
    """base/rel, refusing anything that resolves (symlinks included) outside base."""
    pure = check_relative(rel, what=what)
    target = Path(base, *pure.parts)
    # Walk each existing component: a symlink anywhere on the way is refused, not followed.
    current = Path(base)
    for part in pure.parts:
        current = current / part
        if current.is_symlink():
            raise PathError(f"{what} {rel!r} goes through a symbolic link")
    if not inside(base, target):
        raise PathError(f"{what} {rel!r} resolves outside the workspace")
    return target


def walk_files(root: Path, *, what: str = "skeleton") -> list[tuple[str, Path]]:
    """Every regular file below root as (relative posix path, absolute path), sorted.

    A symbolic link anywhere in the tree is an error (the Backstage scaffolder was bitten by symlinks
    in skeletons pointing at the server's files); so are `.git` folders."""
    if root.is_symlink():
        raise PathError(f"the {what} folder is a symbolic link")
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                raise PathError(f"{what} contains a symbolic link: {rel}")
            if name == ".git":
                raise PathError(f"{what} contains a .git folder: {rel}")
        for name in filenames:
            full = Path(dirpath, name)
            if full.is_file():
                found.append((full.relative_to(root).as_posix(), full))
        dirnames.sort()
    return sorted(found)
