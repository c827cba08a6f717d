"""Vendored browser bundles, patched so that they run under the portal's CSP without a violation.

Redoc's standalone bundle (from drf-spectacular-sidecar) puts Redocly's logo in its sidebar footer from
`https://cdn.redoc.ly/...`: under `img-src 'self' data:` every Redoc view would report a violation, and
the portal loads nothing from other origins (no CDN; the machines may have no internet). The patch
points that image at an empty `data:` URL, which fails to decode, so Redoc's own error handler hides it.

`PatchedVendorFinder` is a staticfiles finder: it writes the patched copy under VAR_DIR once per
source version, and serves it as `plinth-vendor/<name>` to runserver, WhiteNoise and collectstatic
alike (the manifest then hashes it like any other static file). Its `check()` fails `manage.py check`
when a new bundle no longer contains the text a patch replaces, instead of silently shipping the
unpatched behaviour.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage


@dataclass(frozen=True)
class Patch:
    source: str  # a static path served by another finder
    replacements: tuple[tuple[str, str], ...]  # each `old` must occur exactly once


PATCHES: dict[str, Patch] = {
    "plinth-vendor/redoc.standalone.js": Patch(
        source="drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js",
        replacements=(
            ('src:"https://cdn.redoc.ly/redoc/logo-mini.svg"', 'src:"data:,"'),
            # collectstatic's manifest storage would look for the map next to the copy; there is none.
            ("\n//# sourceMappingURL=redoc.standalone.js.map", "\n"),
        ),
    ),
}


class PatchError(RuntimeError):
    pass


def patched_text(patch: Patch) -> str:
    found = finders.find(patch.source)
    if not found:
        raise PatchError(f"{patch.source} is not a static file (is drf-spectacular-sidecar installed?)")
    text = Path(found).read_text(encoding="utf-8")
    for old, new in patch.replacements:
        count = text.count(old)
        if count != 1:
            raise PatchError(f"{patch.source}: expected {old!r} once, found it {count} times "
                             "(a new version of the bundle? review portal/core/vendor.py)")
        text = text.replace(old, new)
    return text


class PatchedVendorFinder(BaseFinder):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.root = Path(settings.VAR_DIR) / "vendor-static"
        self.storage = FileSystemStorage(location=str(self.root))

    def check(self, **kwargs):
        errors = []
        for path, patch in PATCHES.items():
            try:
                patched_text(patch)
            except PatchError as exc:
                errors.append(Error(f"Cannot build {path}: {exc}", id="plinth.E001"))
        return errors

    def find(self, path, find_all=False, **kwargs):
        if path not in PATCHES:
            return [] if find_all else None
        target = self._build(path)
        return [str(target)] if find_all else str(target)

    def list(self, ignore_patterns):
        for path in PATCHES:
            self._build(path)
            yield path, self.storage

    def _build(self, path: str) -> Path:
        """Write the patched copy unless the one on disk was made from the same source and patch."""
        target = self.root / path
        source = Path(finders.find(PATCHES[path].source) or "")
        version = (str(source), source.stat().st_mtime_ns if source.is_file() else 0, PATCHES[path])
        if _built.get(path) == version and target.exists():
            return target  # runserver asks on every request: skip re-reading a megabyte
        text = patched_text(PATCHES[path])
        digest = hashlib.sha256(text.encode()).hexdigest()
        stamp = target.with_name(target.name + ".sha256")
        if not (target.exists() and stamp.exists() and stamp.read_text() == digest):
            _write(target, text, stamp, digest)
        _built[path] = version
        return target


_built: dict[str, tuple] = {}


def _write(target: Path, text: str, stamp: Path, digest: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # Several processes (web workers, test runs) may build at once: write aside, then rename.
    for final, content in ((target, text), (stamp, digest)):
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; it is a public static file
        os.replace(tmp, final)
