"""Every relative link between the repository's Markdown documents (the README, docs/, the SDK's docs)
names a file that exists and, with a #fragment, a heading that file has — as GitHub and the docs site
slug them. A page moved or a heading renamed breaks a link silently otherwise."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")  # an example link in code is not a link


def documents() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "sdk").rglob("*.md"))]
    return [path for path in found if ".venv" not in path.parts and path.is_file()]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    text = CODE_SPAN.sub("", FENCE.sub("", path.read_text()))
    problems = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
            continue  # another site, or a page of the running portal
        file_part, _, fragment = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{path.relative_to(root)}: {target} (no such file)")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            problems.append(f"{path.relative_to(root)}: {target} (no such heading)")
    return problems


def test_relative_links_between_documents_resolve():
    docs = documents()
    assert len(docs) > 20, docs
    problems = [problem for path in docs for problem in broken_links(path)]
    assert not problems, "\n".join(problems)


def test_the_check_sees_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\n## Where it `stands`, now\n\nsee [b](b.md) and [x](#nope)\n"
                                   "and [ok](#where-it-stands-now) [web](https://example.com/x.md) [page](/catalog/) `[eg](c.md)`\n")
    assert broken_links(tmp_path / "a.md", root=tmp_path) == ["a.md: b.md (no such file)", "a.md: #nope (no such heading)"]
