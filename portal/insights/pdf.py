"""Print a self-contained HTML page to PDF with headless Chromium (`--print-to-pdf`).

Why a subprocess in the web process rather than a Celery task: one print of the canvas takes
0.6–1.5 s on the shared 2-core machine (measured: docs/insights.md), a leadership export is rare,
and the person clicking waits for the file either way. A semaphore bounds concurrent prints per
process; each print gets its own throw-away profile, and the page is a local file with its styles
inline, so Chromium fetches nothing.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from pathlib import Path

from django.conf import settings

_SLOTS = threading.BoundedSemaphore(2)
TIMEOUT_S = 30


class PdfUnavailable(Exception):
    """Chromium is missing, busy, failed or too slow: the caller answers 503 with the reason."""


def chromium_path() -> str:
    return getattr(settings, "PLINTH_CHROMIUM", "") or "/usr/bin/chromium"


def html_to_pdf(html: str) -> bytes:
    binary = chromium_path()
    if not Path(binary).exists():
        raise PdfUnavailable(f"Chromium is not installed at {binary}")
    if not _SLOTS.acquire(timeout=10):
        raise PdfUnavailable("the PDF printer is busy; try again in a moment")
    try:
        with tempfile.TemporaryDirectory(prefix="plinth-pdf-") as tmp:
            page, out = Path(tmp) / "page.html", Path(tmp) / "page.pdf"
            page.write_text(html, encoding="utf-8")
            command = [binary, "--headless", "--disable-gpu", "--no-first-run", "--disable-extensions",
                       "--disable-background-networking", "--disable-sync", "--mute-audio",
                       f"--user-data-dir={tmp}/profile", "--no-pdf-header-footer", f"--print-to-pdf={out}",
                       page.as_uri()]
            if os.geteuid() == 0:  # Chromium refuses to run its sandbox as root (containers, CI)
                command.insert(1, "--no-sandbox")
            try:
                done = subprocess.run(command, capture_output=True, timeout=TIMEOUT_S, check=False,  # noqa: S603
                                      env={**os.environ, "HOME": tmp})
            except subprocess.TimeoutExpired:
                raise PdfUnavailable(f"Chromium did not finish printing within {TIMEOUT_S} s") from None
            if done.returncode != 0 or not out.exists():
                tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
                raise PdfUnavailable(f"Chromium failed (exit {done.returncode}): {tail[0][:200]}")
            return out.read_bytes()
    finally:
        _SLOTS.release()
