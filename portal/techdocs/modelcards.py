"""Model cards: `spec.modelCard` (Markdown with YAML front matter, next to the descriptor).

Owns reading and rendering one card, and the facts governance policies consume (presence, sections,
front matter). Sections are the card's level-2 headings; `section_keys` are their snake_case forms.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field

from . import rendering
from .builder import BUILDER_VERSION, BuildError, location_root, resolve_relative

MAX_CARD_BYTES = 512 * 1024
RECOMMENDED_SECTIONS = ("intended_use", "training_data", "metrics", "limitations", "ethical_considerations")


@dataclass
class CardBuild:
    source_path: str = ""
    html: str = ""
    toc: list = field(default_factory=list)
    front_matter: dict = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)
    error: str = ""
    source_hash: str = ""


def model_card_path(entity) -> str | None:
    value = entity.spec.get("modelCard")
    return value.strip() if isinstance(value, str) and value.strip() else None


def section_key(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


class _CardPolicy(rendering.LinkPolicy):
    """Model cards are single files: relative links and images are not served, external links are."""

    def __init__(self, problems: list[str]):
        self.problems = problems

    def link(self, target: str, fragment: str) -> str | None:
        if not target:
            return rendering.prefix_fragment(fragment)
        self.problems.append(f"Relative link removed (model cards are single files): {target[:120]}")
        return None

    def image(self, target: str) -> str | None:
        self.problems.append(f"Image removed (model cards are single files): {target[:120]}")
        return None


@dataclass
class CardSource:
    """A card's file read and checked for size: its bytes and their hash (with the builder version)."""
    path: str
    body: bytes
    source_hash: str


def read_card(entity) -> CardSource:
    """The card's bytes, without rendering them (cheap: the hash keys the request's cache of facts)."""
    relative = model_card_path(entity)
    if relative is None:
        raise BuildError("This model has no spec.modelCard.")
    root = location_root(entity)
    real = resolve_relative(entity, relative, root)
    if not os.path.isfile(real):
        raise BuildError(f"The model card '{relative[:200]}' does not exist.")
    size = os.path.getsize(real)
    if size > MAX_CARD_BYTES:
        raise BuildError(f"The model card is {size} bytes, over the {MAX_CARD_BYTES // 1024} KiB cap.")
    with open(real, "rb") as fh:
        body = fh.read(MAX_CARD_BYTES + 1)
    return CardSource(path=real, body=body, source_hash=hashlib.sha256(BUILDER_VERSION.encode() + body).hexdigest())


def build_card(entity) -> CardBuild:
    return render_card(read_card(entity))


def render_card(source: CardSource) -> CardBuild:
    card = CardBuild(source_path=source.path, source_hash=source.source_hash)
    body = source.body
    if b"\x00" in body[:8192]:
        raise BuildError("The model card looks binary (it contains NUL bytes).")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BuildError(f"The model card is not valid UTF-8 (byte {exc.start}).") from None
    front, text, fm_error = rendering.split_front_matter(text)
    problems: list[str] = []
    out = rendering.render_markdown(text, _CardPolicy(problems), with_text=False)
    card.html, card.toc, card.front_matter = out.html, out.toc, front
    card.sections = rendering.section_titles(out.toc, 2)
    card.error = "\n".join(([fm_error] if fm_error else []) + problems)
    return card


def facts_from(card) -> dict:
    """The shape governance policies read (see selectors.model_card_facts)."""
    if card is None:
        return {"present": False, "sections": [], "section_keys": [], "front_matter": {},
                "missing_sections": list(RECOMMENDED_SECTIONS), "error": "", "built_at": None}
    keys = [section_key(s) for s in card.sections]
    present = getattr(card, "status", "ok") in {"ok", "partial"}
    return {
        "present": present,
        "sections": list(card.sections),
        "section_keys": keys,
        "front_matter": dict(card.front_matter or {}),
        "missing_sections": [k for k in RECOMMENDED_SECTIONS if k not in keys] if present else list(RECOMMENDED_SECTIONS),
        "error": card.error,
        "built_at": card.built_at.isoformat() if getattr(card, "built_at", None) else None,
    }
