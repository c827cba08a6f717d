"""`plinth catalog list|get|register|refresh|delete-orphan|validate` and `plinth search`."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import click

from .errors import CheckFailed, InputError
from .output import note, record, state, table

DESCRIPTOR = "catalog-info.yaml"
_SUBSTITUTION = re.compile(r"\$(?:text|json|yaml)\s*:\s*['\"]?([^'\"\s#]+)")
MAX_UPLOAD_FILES = 500

ENTITY_COLUMNS = [
    ("REF", lambda e: e.ref), ("TITLE", lambda e: e.title or ""), ("TYPE", lambda e: e.spec.get("type", "")),
    ("LIFECYCLE", lambda e: e.spec.get("lifecycle", "")), ("OWNER", lambda e: e.spec.get("owner", "")),
]


@click.group()
def catalog():
    """The software catalog: entities and their descriptors."""


@catalog.command("list")
@click.option("--kind", help="Only this kind, e.g. model.")
@click.option("--type", "type_", help="Only this spec.type.")
@click.option("--owner", help="Only this owner (a team).")
@click.option("--lifecycle", help="Only this lifecycle.")
@click.option("--tag", help="Only entities with this tag.")
@click.option("--filter", "filters", multiple=True, help="Backstage filter, e.g. kind=model,spec.type=classifier.")
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True, help="At most this many (0: all).")
def list_(kind, type_, owner, lifecycle, tag, filters, limit):
    """List entities you may see."""
    client = state().client()
    rows = client.entities.list(kind=kind, type=type_, owner=owner, lifecycle=lifecycle, tag=tag,
                                filter=list(filters) or None, limit=limit or None)
    table(rows, ENTITY_COLUMNS)


@catalog.command()
@click.argument("ref")
def get(ref):
    """Show one entity: REF is kind:namespace/name (or kind:name)."""
    entity = state().client().entities.get(ref)
    record(entity, [("ref", lambda e: e.ref), ("title", lambda e: e.title), ("description", lambda e: e.description),
                    ("type", lambda e: e.spec.get("type")), ("lifecycle", lambda e: e.spec.get("lifecycle")),
                    ("owner", lambda e: e.spec.get("owner")), ("tags", lambda e: e.metadata.get("tags")),
                    ("relations", lambda e: [f"{r['type']} {r['targetRef']}" for r in e.relations]),
                    ("url", lambda e: state().client().url + (e.status.get("url") or ""))])


def collect(path: Path) -> dict[str, str]:
    """The files to upload for a descriptor file or a folder: every catalog-info.yaml below it (hidden
    folders skipped, as the server reads a folder) and the files their $text/$json/$yaml name."""
    if path.is_file():
        base, descriptors = path.parent, [path]
    else:
        base, descriptors = path, []
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in {"node_modules", ".venv"})
            if DESCRIPTOR in filenames:
                descriptors.append(Path(dirpath) / DESCRIPTOR)
    if not descriptors:
        raise InputError(f"{path}: no {DESCRIPTOR} found")
    files: dict[str, str] = {}
    for descriptor in descriptors:
        text = _read(descriptor)
        # A single file registers under the name the server reads, whatever it is called here.
        rel = DESCRIPTOR if path.is_file() else descriptor.relative_to(base).as_posix()
        files[rel] = text
        for target in _SUBSTITUTION.findall(text):
            if "://" in target:
                continue
            included = (descriptor.parent / target).resolve()
            try:
                key = included.relative_to(base.resolve()).as_posix()
            except ValueError:
                continue  # outside the folder: the server refuses it and says so
            if included.is_file() and key not in files:
                files[key] = _read(included)
    if len(files) > MAX_UPLOAD_FILES:
        raise InputError(f"{path}: {len(files)} files; one upload takes at most {MAX_UPLOAD_FILES}")
    return files


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from exc


def default_source(path: Path) -> str:
    """A stable name for an upload: the git remote and the path inside the repository, so that every CI
    run of a repository replaces the same upload; else the host and absolute path."""
    folder = path if path.is_dir() else path.parent
    try:
        top = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        remote = subprocess.run(["git", "-C", top, "config", "--get", "remote.origin.url"], capture_output=True,
                                text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        top, remote = "", ""
    inside = _inside(path, Path(top)) if top and remote else None
    if inside is not None:
        repo = re.sub(r"^[a-z+]+://([^@/]*@)?|^git@|\.git$", "", remote).replace(":", "/")
        return f"{repo}/{inside}".rstrip("/.")[:200]
    import socket

    return f"{socket.gethostname()}:{path.resolve()}"[:200]


def _inside(path: Path, top: Path) -> str | None:
    """`path` relative to the repository at `top`, as it is named there: a symbolic link to a file
    elsewhere keeps its own name (its target may lie outside the repository); None when it is not inside."""
    top = top.resolve()
    absolute = path.absolute()
    for candidate in (absolute, absolute.parent.resolve() / absolute.name, absolute.resolve()):
        try:
            return candidate.relative_to(top).as_posix()
        except ValueError:
            continue
    return None


URL = re.compile(r"^https?://", re.IGNORECASE)


@catalog.command()
@click.argument("target")
@click.option("--source", help="Name of an upload (default: git remote + path, else host + path).")
@click.option("--dry-run", is_flag=True, help="Show what would change; store nothing.")
def register(target, source, dry_run):
    """Register a URL the server reads, or a local file or folder whose descriptors are sent to it.
    Exit 1 when a descriptor has errors (the valid ones are stored)."""
    client = state().client()
    if match := URL.match(target):
        # The scheme in lower case (`HTTPS://…` is a URL too), the rest as given.
        plan = client.locations.register(match.group().lower() + target[match.end():], dry_run=dry_run)
    else:
        path = Path(target)
        if not path.exists():
            raise InputError(f"{target}: no such file or folder (a URL must start with http:// or https://)")
        plan = client.locations.upload(collect(path), source=source or default_source(path), dry_run=dry_run)
    _show_plan(plan, "Dry run: " if dry_run else "")


def _show_plan(plan, prefix: str = "") -> None:
    if state().output != "table":
        from .output import dump

        dump(plan, state().output)
    else:
        for verb, refs in (("added", plan.added), ("changed", plan.changed), ("removed", plan.removed)):
            for ref in refs:
                click.echo(f"{verb:<8} {ref}")
        note(f"{prefix}{len(plan.added)} added, {len(plan.changed)} changed, {len(plan.removed)} removed, "
             f"{plan.unchanged} unchanged, {len(plan.errors)} error(s)"
             + (f"; location {plan.location.id}" if plan.location else ""))
    for problem in plan.errors:
        note(f"error: {problem}")
    if plan.errors:
        raise CheckFailed(f"{len(plan.errors)} descriptor error(s)")


@catalog.command()
@click.argument("ref")
def refresh(ref):
    """Read an entity's location again now."""
    _show_plan(state().client().entities.refresh(ref))


@catalog.command("delete-orphan")
@click.argument("ref")
def delete_orphan(ref):
    """Delete an orphan: an entity its location no longer defines (the catalog keeps it, flagged)."""
    state().client().entities.delete_orphan(ref)
    note(f"deleted the orphan {ref}")


@catalog.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--server", is_flag=True, help="Ask the server instead (checks references too; needs a token).")
def validate(files, server):
    """Validate descriptor files offline with the server's schemas and metadata rules. Exit 1 when one
    is invalid, 2 when a file cannot be read. Use it as a pre-commit hook or a CI step (no server needed)."""
    results = []
    if server:
        from ..models import Problem

        client = state().client()
        for name in files:
            text = _read(Path(name))
            result = client.validation.validate(yaml=text)
            results.append({"source": name, "documents": result.documents,
                            "problems": [Problem(p.message, name, p.line, p.field) for p in result.errors]})
    else:
        from ..validate import validate_text

        for name in files:
            text = _read(Path(name))  # a missing or unreadable file: exit 2, as with --server
            r = validate_text(text, name, base=os.path.dirname(os.path.abspath(name)))
            results.append({"source": r.source, "documents": r.documents, "problems": r.problems})
    bad = sum(len(r["problems"]) for r in results)
    if state().output != "table":
        from .output import dump

        dump([{**r, "valid": not r["problems"]} for r in results], state().output)
    else:
        for r in results:
            for problem in r["problems"]:
                click.echo(str(problem))
            note(f"{r['source']}: {r['documents']} document(s), "
                 + ("OK" if not r["problems"] else f"{len(r['problems'])} error(s)"))
    if bad:
        raise CheckFailed(f"{bad} error(s) in {sum(1 for r in results if r['problems'])} file(s)")


@click.command()
@click.argument("query")
@click.option("--kind", multiple=True, help="Only these kinds.")
@click.option("--owner", multiple=True, help="Only these owners.")
@click.option("--tag", multiple=True, help="Only with these tags.")
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True, help="At most this many (0: all).")
def search(query, kind, owner, tag, limit):
    """Search entities and docs (`fraud kind:model -deprecated`)."""
    hits = state().client().search.query(query, kind=kind, owner=owner, tag=tag, limit=limit or None)
    table(hits, [("KIND", lambda h: h.kind), ("NAME", lambda h: h.name), ("TITLE", lambda h: h.title),
                 ("OWNER", lambda h: h.owner), ("URL", lambda h: h.url)], empty=f"No results for '{query}'.")
