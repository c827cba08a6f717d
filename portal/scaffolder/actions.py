"""The action registry: what a template step may do. Add an action with `@action("name", …)`.

Every action receives an ActionContext and returns its outputs (a dict the next steps read as
`${{ steps.<id>.output.<key> }}`). File actions go through `ctx.workspace`, which refuses paths
outside the run's workspace and enforces the file-count and byte caps.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from portal.core import urlparts

from . import conf, downloads
from .expressions import parse_repo_url, render_string
from .paths import PathError, check_relative, inside, safe_join, walk_files

__all__ = ["ACTIONS", "ALIASES", "ActionContext", "ActionError", "Workspace", "action", "resolve_action"]


class ActionError(Exception):
    """A step failed for a reason the user can act on; the message is shown on the run page."""


class CapExceeded(ActionError):
    pass


@dataclass
class ActionSpec:
    name: str
    func: Callable[[ActionContext], dict]
    required: tuple[str, ...] = ()
    description: str = ""
    publishes: bool = False  # skipped (with a log line) in a dry run; done once per run, never repeated
    # For a publishing action: given the output it recorded in an earlier attempt and the run's shared
    # state, restore that state and say whether what it published is still there (else it runs again).
    resume: Callable[[dict, dict], bool] | None = None


ACTIONS: dict[str, ActionSpec] = {}
# Backstage actions that have a local equivalent here.
ALIASES: dict[str, str] = {
    "publish:github": "publish:git",
    "publish:gitlab": "publish:git",
    "publish:bitbucket": "publish:git",
    "publish:bitbucketCloud": "publish:git",
    "publish:bitbucketServer": "publish:git",
    "publish:azure": "publish:git",
    "publish:gerrit": "publish:git",
    "publish:gitea": "publish:git",
}


def action(
    name: str,
    *,
    required: tuple[str, ...] = (),
    description: str = "",
    publishes: bool = False,
    resume: Callable[[dict, dict], bool] | None = None,
):
    def register(func):
        ACTIONS[name] = ActionSpec(
            name, func, required, description or (func.__doc__ or "").strip(), publishes, resume
        )
        return func

    return register


def resolve_action(name: str) -> str | None:
    if name in ACTIONS:
        return name
    return ALIASES.get(name)


class Workspace:
    """The run's folder, with the caps. All writes of all actions go through here."""

    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, rel: str, *, what: str = "path") -> Path:
        try:
            return safe_join(self.root, rel, what=what)
        except PathError as exc:
            raise ActionError(str(exc)) from exc

    def files(self) -> list[tuple[str, Path]]:
        try:
            return walk_files(self.root, what="workspace")
        except PathError as exc:
            raise ActionError(str(exc)) from exc

    def usage(self) -> tuple[int, int]:
        files = self.files()
        return len(files), sum(p.stat().st_size for _, p in files)

    def write(self, rel: str, content: bytes, *, overwrite: bool = True, mode: int | None = None) -> Path:
        if len(content) > conf.max_file_bytes():
            raise CapExceeded(
                f"{rel}: {len(content)} bytes is over the per-file cap of {conf.max_file_bytes()} bytes"
            )
        target = self.path(rel)
        existed = target.exists()
        if existed and not overwrite:
            raise ActionError(f"{rel} already exists in the workspace")
        count, total = self.usage()
        old = target.stat().st_size if existed else 0
        if not existed and count + 1 > conf.max_files():
            raise CapExceeded(
                f"the run would write more than {conf.max_files()} files (the cap); nothing was published"
            )
        if total - old + len(content) > conf.max_bytes():
            raise CapExceeded(
                f"the run would write more than {conf.max_bytes()} bytes (the cap); nothing was published"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        if not inside(self.root, target.parent):
            raise ActionError(f"{rel} resolves outside the workspace")
        target.write_bytes(content)
        if mode is not None:
            target.chmod(mode & 0o755)
        return target


@dataclass
class ActionContext:
    run: Any  # models.Run
    step: Any  # templates.Step
    template: Any  # templates.Template
    workspace: Workspace
    input: dict
    dry_run: bool
    user: Any
    log: Callable[[str], None]
    secrets: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)  # shared between steps of one run (e.g. the last publish)


# --- helpers ------------------------------------------------------------------------------------


def _skeleton_dir(ctx: ActionContext, url: Any) -> Path:
    text = str(url or ".")
    scheme = urlparts.scheme(text)
    if scheme is None or (scheme and len(scheme) > 1):
        raise ActionError(
            f"cannot fetch {text!r}: only folders next to the template can be fetched "
            "(remote URLs are not supported here)"
        )
    base = ctx.template.base_dir
    if not base.is_dir():
        raise ActionError(
            "the template's folder is not readable (templates from URLs cannot fetch skeletons)"
        )
    try:
        folder = safe_join(base, text, what="skeleton url")
    except PathError as exc:
        raise ActionError(str(exc).replace("the workspace", "the template's folder")) from exc
    if not folder.is_dir():
        raise ActionError(f"skeleton folder {text!r} does not exist next to the template")
    return folder


def _target(ctx: ActionContext) -> str:
    target = str(ctx.input.get("targetPath") or ".")
    try:
        return check_relative(target, what="targetPath").as_posix()
    except PathError as exc:
        raise ActionError(str(exc)) from exc


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def _where(rel: str, root: str) -> str:
    """A folder as the log names it: `rel`, or `root` for "." (a step without targetPath writes to the
    top of the workspace: the root of the project that publish:git or publish:zip hands over)."""
    return root if rel in ("", ".") else rel


def _join(prefix: str, rel: str) -> str:
    return rel if prefix in ("", ".") else f"{prefix}/{rel}"


def _matches(rel: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(rel, p.lstrip("./")) or fnmatch.fnmatch(rel, p) for p in patterns)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# --- fetch --------------------------------------------------------------------------------------


@action("fetch:template", required=("url",), description="Render a skeleton folder with the template values.")
def fetch_template(ctx: ActionContext) -> dict:
    folder = _skeleton_dir(ctx, ctx.input.get("url"))
    target = _target(ctx)
    values = ctx.input.get("values") or {}
    if not isinstance(values, dict):
        raise ActionError("input 'values' must be a mapping")
    raw_patterns = [
        str(p)
        for p in _as_list(ctx.input.get("copyWithoutRender"))
        + _as_list(ctx.input.get("copyWithoutTemplating"))
    ]
    extension = ctx.input.get("templateFileExtension")
    if extension is True:
        extension = ".njk"
    render_ctx = {"values": values}
    try:
        files = walk_files(folder)
    except PathError as exc:
        raise ActionError(str(exc)) from exc
    written = 0
    for rel, path in files:
        raw = path.read_bytes()
        plain = _matches(rel, raw_patterns)
        if extension:
            plain = plain or not rel.endswith(str(extension))
        out_rel = rel
        if not plain and extension:
            out_rel = rel[: -len(str(extension))]
        out_rel = render_string(out_rel, render_ctx, name=f"file name {rel}") if "${{" in out_rel else out_rel
        if not out_rel.strip() or out_rel.endswith("/"):
            continue  # a name rendered to nothing: Backstage skips such files
        content = raw
        if not plain:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = None  # binary: copied as is
            if text is not None:
                content = render_string(text, render_ctx, name=rel).encode("utf-8")
        ctx.workspace.write(_join(target, out_rel), content, mode=path.stat().st_mode)
        written += 1
    source = _where(folder.relative_to(ctx.template.base_dir).as_posix(), "the template's folder")
    ctx.log(f"rendered {_files(written)} from {source} into {_where(target, 'the project root')}")
    return {"files": written}


@action("fetch:plain", required=("url",), description="Copy a folder next to the template without rendering.")
def fetch_plain(ctx: ActionContext) -> dict:
    folder = _skeleton_dir(ctx, ctx.input.get("url"))
    target = _target(ctx)
    try:
        files = walk_files(folder)
    except PathError as exc:
        raise ActionError(str(exc)) from exc
    for rel, path in files:
        ctx.workspace.write(_join(target, rel), path.read_bytes(), mode=path.stat().st_mode)
    ctx.log(f"copied {_files(len(files))} into {_where(target, 'the project root')}")
    return {"files": len(files)}


# --- fs -----------------------------------------------------------------------------------------


@action("fs:rename", required=("files",), description="Rename files inside the workspace.")
def fs_rename(ctx: ActionContext) -> dict:
    moved = 0
    for item in _as_list(ctx.input.get("files")):
        if not isinstance(item, dict) or not item.get("from") or not item.get("to"):
            raise ActionError("each entry of 'files' needs 'from' and 'to'")
        src = ctx.workspace.path(str(item["from"]), what="from")
        dst = ctx.workspace.path(str(item["to"]), what="to")
        if not src.exists():
            raise ActionError(f"{item['from']} does not exist in the workspace")
        if dst.exists() and not item.get("overwrite"):
            raise ActionError(f"{item['to']} already exists (set overwrite: true to replace it)")
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        ctx.log(f"renamed {item['from']} → {item['to']}")
        moved += 1
    return {"renamed": moved}


@action(
    "fs:delete",
    required=("files",),
    description="Delete files or folders (globs allowed) inside the workspace.",
)
def fs_delete(ctx: ActionContext) -> dict:
    deleted = 0
    for pattern in _as_list(ctx.input.get("files")):
        pattern = str(pattern)
        try:
            relative = check_relative(pattern, what="files").as_posix()
        except PathError as exc:
            raise ActionError(str(exc)) from exc
        matches = [ctx.workspace.root] if relative == "." else sorted(ctx.workspace.root.glob(relative))
        for path in matches:
            if path == ctx.workspace.root:  # `**` or `.`: what the workspace holds may go, never the folder
                ctx.log(f"{pattern}: the workspace folder itself is kept")
                continue
            if not path.exists() and not path.is_symlink():
                continue  # inside a folder this pattern already deleted
            if not inside(ctx.workspace.root, path) or path.is_symlink():
                raise ActionError(f"{pattern}: refuses to delete outside the workspace")
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            deleted += 1
            ctx.log(f"deleted {path.relative_to(ctx.workspace.root).as_posix()}")
    return {"deleted": deleted}


# --- debug --------------------------------------------------------------------------------------


@action("debug:log", description="Write a message (and optionally the workspace listing) to the log.")
def debug_log(ctx: ActionContext) -> dict:
    if ctx.input.get("message") not in (None, ""):
        ctx.log(str(ctx.input["message"]))
    listing = ctx.input.get("listWorkspace")
    if listing:
        for rel, path in ctx.workspace.files():
            ctx.log(f"  {rel} ({path.stat().st_size} bytes)")
            if listing == "with-contents":
                ctx.log(path.read_text(errors="replace")[:2000])
    return {}


@action(
    "debug:wait", description="Wait (seconds, minutes or milliseconds); the run's time limit still applies."
)
def debug_wait(ctx: ActionContext) -> dict:
    seconds = (
        float(ctx.input.get("seconds") or 0)
        + 60 * float(ctx.input.get("minutes") or 0)
        + float(ctx.input.get("milliseconds") or 0) / 1000
    )
    ctx.log(f"waiting {seconds:g} s")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(min(0.2, max(0.0, end - time.monotonic())))
    return {}


# --- catalog ------------------------------------------------------------------------------------


@action(
    "catalog:write", required=("entity",), description="Write an entity descriptor file into the workspace."
)
def catalog_write(ctx: ActionContext) -> dict:
    entity = ctx.input.get("entity")
    if not isinstance(entity, dict):
        raise ActionError("input 'entity' must be a mapping")
    path = str(ctx.input.get("filePath") or "catalog-info.yaml")
    ctx.workspace.write(path, yaml.safe_dump(entity, sort_keys=False, allow_unicode=True).encode())
    ctx.log(f"wrote {path}")
    return {}


PUBLISHED = "published:"  # a repository publish:git made: `published:<owner>/<repo>[/<path>]`


def _published_file(url: str) -> tuple[str, str, str]:
    """(owner, repo, path) of `published:<owner>/<repo>[/<path>]`, or ActionError."""
    url = url.strip()
    if not url.startswith(PUBLISHED):
        if urlparts.scheme(url) in ("file", "") and "/checkouts/" in url:
            raise ActionError(f"cannot register {url!r}: a path on a worker's disk; publish:git's repoContentsUrl "
                              "is now `published:<owner>/<repo>` (run the template again)")
        raise ActionError(f"cannot register {url!r}: only repositories published by this portal "
                          "(`published:<owner>/<repo>`) can be registered")
    owner, _, rest = url[len(PUBLISHED):].partition("/")
    repo, _, path = rest.partition("/")
    for value in (owner, repo):
        if not _REPO_PART.match(value):
            raise ActionError(f"cannot register {url!r}: it is not a repository published by this portal")
    return owner, repo, path


def _repository_files(checkout: Path, ctx: ActionContext, *, quiet: bool = False) -> list[tuple[str, str | bytes]]:
    """The files of a checkout the catalog stores (catalog/uploads.py: not hidden, within the catalog's
    per-file cap; text as text, images and other files as bytes); the others are named in the log
    (`quiet`: not, for the check before publishing, whose register step names them later)."""
    from django.conf import settings

    files: list[tuple[str, str | bytes]] = []
    left: list[str] = []
    for dirpath, dirnames, filenames in os.walk(checkout, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            full = Path(dirpath, name)
            rel = full.relative_to(checkout).as_posix()
            if name.startswith(".") or full.is_symlink() or not full.is_file():
                continue
            if full.stat().st_size > settings.PLINTH_CATALOG_MAX_BYTES:
                left.append(f"{rel} (over {settings.PLINTH_CATALOG_MAX_BYTES} bytes)")
                continue
            content = full.read_bytes()
            try:
                files.append((rel, content.decode("utf-8")))
            except UnicodeDecodeError:
                files.append((rel, content))
    if left and not quiet:
        ctx.log(f"not stored in the catalog ({len(left)}): {', '.join(left[:10])}{' …' if len(left) > 10 else ''}")
    return files


def _register_target(inputs: dict, state_url: str | None) -> tuple[str, str, str]:
    """(owner, repo, path of the descriptor) a catalog:register step with these inputs reads; `state_url`:
    the repository the run's last publish:git made (used when the inputs name none)."""
    info_url = inputs.get("catalogInfoUrl")
    if info_url:
        return _published_file(str(info_url))
    contents = inputs.get("repoContentsUrl") or state_url
    if not contents:
        raise ActionError("nothing to register: give 'catalogInfoUrl' or 'repoContentsUrl', or publish first")
    owner, repo, base = _published_file(str(contents))
    path = str(inputs.get("catalogInfoPath") or "catalog-info.yaml").lstrip("/")
    return owner, repo, "/".join(p for p in (base, path) if p)


def _descriptor(root: Path, rel: str, where: str) -> str:
    """`rel` inside `root` as the catalog will name it, or ActionError when it is not a file there."""
    try:
        target = safe_join(root, rel, what="catalogInfoPath")
    except PathError as exc:
        raise ActionError(str(exc)) from exc
    if not target.is_file():
        raise ActionError(f"{rel} was not found in {where}")
    return target.relative_to(root).as_posix()  # safe_join keeps the path as given (no resolving)


def _upload(ctx: ActionContext, source: str, files: list, entry: str, *, store: bool):
    """The catalog's registration of `files` as the upload `source` (its dry run first: invalid, naming an
    owner the user may not claim, or a source the user may not replace, and nothing is stored); its plan,
    or ActionError saying why not."""
    from django.core.exceptions import PermissionDenied, ValidationError

    from catalog import services as catalog_services
    from catalog.descriptors.errors import DescriptorError

    try:
        for dry_run in (True, False) if store else (True,):
            plan = catalog_services.location_upload(source=source, files=files, actor=ctx.user, entry=entry,
                                                    dry_run=dry_run)
            if plan.errors:
                conflicts = {id(e) for e in plan.conflicts}
                raise ActionError(f"the generated {entry} cannot be registered: " + "; ".join(
                    _taken(e) if id(e) in conflicts else str(e) for e in plan.errors[:10]))
    except DescriptorError as exc:
        raise ActionError(f"catalog: {exc}") from exc
    except ValidationError as exc:
        raise ActionError(f"catalog: {'; '.join(exc.messages)}") from exc
    except PermissionDenied as exc:
        raise ActionError(f"catalog: {exc}") from exc
    return plan


def _taken(error) -> str:
    """A name the catalog already has from another location, said without that location: the entity may
    be another team's private one, which must look missing (the catalog's own message names the location
    and its path; catalog/ingest/planner.py). The ref is the one this descriptor asks for."""
    where = ":".join(str(p) for p in (error.source, error.line) if p not in ("", None))
    asked = _ASKED.match(error.message)
    name = f"{asked.group(1)}: " if asked else ""
    return f"{where + ': ' if where else ''}{name}this name is already taken in the catalog; choose another name"


_ASKED = re.compile(r"^Entity (\S+) ")


@action(
    "catalog:register", description="Register the published catalog-info.yaml in the catalog.", publishes=True
)
def catalog_register(ctx: ActionContext) -> dict:
    """The published repository's files are registered as an upload (catalog/uploads.py) whose one
    descriptor is the location: stored in the database, so every node refreshes it and builds its
    docs without the worker's checkout. Only a repository this run published, or one of a team the user
    may create for, can be read: any other answers as a missing one."""
    owner, repo, rel = _register_target(ctx.input, ctx.state.get("repoContentsUrl"))
    repository = _registrable(ctx, owner, repo)
    checkout = published_checkout(repository, _git_env(ctx.user))
    rel = _descriptor(checkout, rel, "the published repository")
    source = f"{PUBLISHED}{owner}/{repo}"
    plan = _upload(ctx, source, _repository_files(checkout, ctx), rel, store=True)
    refs = [c.ref for c in plan.added] + [c.ref for _, c in plan.changed] + list(plan.unchanged)
    main = _main_ref(refs)
    ctx.log(f"registered {len(refs)} entit{'y' if len(refs) == 1 else 'ies'}: {', '.join(sorted(refs))}")
    return {"entityRef": main, "entityRefs": sorted(refs), "catalogInfoUrl": f"{source}/{rel}"}


def check_registration(ctx: ActionContext, register_step: Any, inputs: dict, *, owner: str, repo: str,
                       state_url: str | None) -> None:
    """Before publish:git makes `owner`/`repo` (ctx is that step's): what `register_step` (with its
    `inputs` rendered now) will register from it, tried on the workspace by the catalog's dry run. A
    descriptor the catalog refuses then fails the publish step, and nothing is published: after
    publishing, the repository would hold its name against "Start again" and every retry. A step that
    will read another repository is checked when it runs."""
    try:
        target = _register_target(inputs, state_url)
    except ActionError:
        return  # the step says why when it runs
    if target[:2] != (owner, repo):
        return
    source = ctx.workspace.path(str(ctx.input.get("sourcePath") or "."), what="sourcePath")
    where = f"step '{register_step.id}' ({register_step.action}) would fail, so nothing was published"
    try:
        rel = _descriptor(source, target[2], "the project to publish")
        _upload(ctx, f"{PUBLISHED}{owner}/{repo}", _repository_files(source, ctx, quiet=True), rel, store=False)
    except ActionError as exc:
        raise ActionError(f"{where}: {exc}") from exc


_PREFERRED = ("model:", "featureset:", "pipeline:", "component:", "api:", "dataset:", "system:")


def _main_ref(refs: list[str]) -> str:
    for prefix in _PREFERRED:
        for ref in refs:
            if ref.startswith(prefix):
                return ref
    return next((r for r in refs if not r.startswith("location:")), refs[0] if refs else "")


# --- publish ------------------------------------------------------------------------------------

_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _git_env(user) -> dict:
    name = (user.get_full_name() or user.get_username()) if user is not None else "Plinth"
    email = (getattr(user, "email", "") or "plinth@localhost") if user is not None else "plinth@localhost"
    home = tempfile.gettempdir()
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "LANG": "C.UTF-8",
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": "Plinth scaffolder",
        "GIT_COMMITTER_EMAIL": "plinth@localhost",
    }


def git(*args: str, env: dict, cwd: Path | None = None) -> str:
    cmd = [
        "git",
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "commit.gpgsign=false",
        "-c",
        "protocol.file.allow=always",
        *args,
    ]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip()[:500]
        command = _git_command(args)
        if "No space left on device" in output or "Disk quota exceeded" in output:
            raise ActionError(
                f"the disk is full: git {command} could not write ({output}). Nothing was published; "
                "free space, then retry the run"
            )
        raise ActionError(f"git {command} failed: {output}")
    return proc.stdout.strip()


def _git_command(args: tuple[str, ...]) -> str:
    """The git subcommand among global options (`--git-dir X --work-tree Y add -A` → add)."""
    rest = list(args)
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        if option in ("--git-dir", "--work-tree", "-C", "-c") and rest:
            rest.pop(0)
    return rest[0] if rest else "(no command)"


def _repo_names(ctx: ActionContext) -> tuple[str, str]:
    repo_url = ctx.input.get("repoUrl")
    if repo_url:
        parsed = parse_repo_url(repo_url)
        owner, repo = parsed["owner"] or parsed["organization"] or parsed["workspace"], parsed["repo"]
    else:
        owner, repo = (
            str(ctx.input.get("owner") or "local"),
            str(ctx.input.get("repo") or ctx.input.get("name") or ""),
        )
    if not repo:
        raise ActionError("publish needs 'repoUrl' (host?owner=…&repo=…) or 'repo'")
    for label, value in (("owner", owner or "local"), ("repo", repo)):
        if not _REPO_PART.match(value) or ".." in value:
            raise ActionError(f"repository {label} {value!r} is not allowed (letters, digits, '.', '_', '-')")
    return owner or "local", repo


def _missing(owner: str, repo: str) -> ActionError:
    return ActionError(f"published:{owner}/{repo} is not a repository published by this portal")


def _published(owner: str, repo: str):
    """The published repository's row (its publication finished), or ActionError."""
    from .selectors import published

    repository = published(owner, repo)
    if repository is None:
        raise _missing(owner, repo)
    return repository


def _registrable(ctx: ActionContext, owner: str, repo: str):
    """The published repository catalog:register may read (selectors.registrable_repository), or the
    ActionError a missing one gets: another team's repository must not be read, registered, or told apart
    from a missing one by its files or their errors."""
    from .selectors import registrable_repository

    repository = registrable_repository(ctx.user, ctx.run.uid, owner, repo)
    if repository is None:
        raise _missing(owner, repo)
    return repository


def publish_target(ctx: ActionContext) -> tuple[str, str]:
    """(owner, repo) a publish:git step with these inputs makes, or ActionError: a name that is not
    allowed, or an owner that is a team the run's creator may not create for. Checked before the name is
    reserved: else anyone could take names in any team's namespace (and that team could not even
    download what holds them)."""
    from portal.accounts import permissions
    from portal.accounts.models import Team

    owner, repo = _repo_names(ctx)
    team_id = Team.objects.filter(name__iexact=owner).values_list("pk", flat=True).first()
    if ctx.user is None:
        raise ActionError(f"cannot publish {owner}/{repo}: the account that started this run no longer exists")
    if not permissions.may_publish_repository(ctx.user, team_id):
        if team_id is not None:
            raise ActionError(f"cannot publish {owner}/{repo}: repositories owned by {owner} are published by its "
                              "members, maintainers and admins; choose one of your teams as the owner")
        raise ActionError(f"cannot publish {owner}/{repo}: publishing a repository needs the member role "
                          "(or higher) in a team")
    return owner, repo


def _checkout_path(owner: str, repo: str) -> Path:
    return conf.publish_root() / "checkouts" / owner / repo


def published_checkout(repository, env: dict) -> Path:
    """This node's checkout of a published repository at its published commit: the worker that published
    it has one; any other node clones one from the git bundle in the shared storage (a cache, made
    again when missing or at another commit)."""
    checkout = _checkout_path(repository.owner, repository.name)
    if _head(checkout / ".git", env) == repository.commit:
        return checkout
    if not downloads.bundle_exists(repository):
        raise ActionError(f"the git bundle of {repository} is missing from the storage")
    checkout.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{repository.name[:40]}-", dir=checkout.parent))
    try:
        bundle = scratch / "repository.bundle"
        with downloads.open_bundle(repository) as src, bundle.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        git("clone", "-q", "-b", repository.branch, str(bundle), str(scratch / "work"), env=env)
        if _head(scratch / "work" / ".git", env) != repository.commit:
            raise ActionError(f"the git bundle of {repository} does not hold its published commit")
        shutil.rmtree(checkout, ignore_errors=True)
        try:
            (scratch / "work").rename(checkout)
        except OSError:  # another process on this node made it meanwhile
            if _head(checkout / ".git", env) != repository.commit:
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return checkout


def _git_value(git_dir: Path, env: dict, *args: str) -> str | None:
    """What `git --git-dir <git_dir> <args>` prints (None: no such repository, or nothing)."""
    if not git_dir.is_dir():
        return None
    return subprocess.run(["git", "--git-dir", str(git_dir), *args], env=env, capture_output=True, text=True,
                          check=False).stdout.strip() or None


def _head(git_dir: Path, env: dict) -> str | None:
    return _git_value(git_dir, env, "rev-parse", "--verify", "-q", "HEAD")


def _resume_git(output: dict, state: dict) -> bool:
    """publish:git done by an earlier attempt: reuse it if that commit is still what is published."""
    try:
        owner, repo, _ = _published_file(str(output.get("repoContentsUrl") or ""))
        repository = _published(owner, repo)
    except ActionError:
        return False
    if repository.commit != output.get("commitHash") or not downloads.bundle_exists(repository):
        return False
    state["repoContentsUrl"] = output["repoContentsUrl"]
    return True


def _reserve(ctx: ActionContext, owner: str, repo: str, branch: str, description: str):
    """The repository's row for this run: the name is taken in the database (on every node at once), or
    ActionError when another run has it. This run's own earlier attempt is published again."""
    from django.db import IntegrityError, transaction

    from .models import PublishedRepository

    try:
        with transaction.atomic():
            return PublishedRepository.objects.create(owner=owner, name=repo, run_uid=ctx.run.uid, branch=branch,
                                                      description=description)
    except IntegrityError:
        repository = PublishedRepository.objects.filter(owner=owner, name=repo).first()
    if repository is None or repository.run_uid != ctx.run.uid:
        raise ActionError(f"repository {owner}/{repo} already exists; choose another name")
    ctx.log(f"repository {owner}/{repo} was created by an earlier attempt of this run: publishing it again")
    downloads.delete_bundle(repository)
    PublishedRepository.objects.filter(pk=repository.pk).update(branch=branch, commit="", description=description)
    repository.branch, repository.commit = branch, ""
    return repository


@action(
    "publish:git",
    description="Create a git repository with an initial commit, kept as a git bundle in the shared storage "
                "(downloaded from the run page, cloned with `git clone`).",
    publishes=True,
    resume=_resume_git,
)
def publish_git(ctx: ActionContext) -> dict:
    owner, repo = publish_target(ctx)
    source = ctx.workspace.path(str(ctx.input.get("sourcePath") or "."), what="sourcePath")
    branch = str(ctx.input.get("defaultBranch") or "main")
    if not _REPO_PART.match(branch):
        raise ActionError(f"branch {branch!r} is not allowed")
    env = _git_env(ctx.user)
    legacy = conf.publish_root() / "repos" / owner / f"{repo}.git"
    checkout = _checkout_path(owner, repo)
    repository = _reserve(ctx, owner, repo, branch, str(ctx.input.get("description") or "")[:500])
    try:
        if _git_value(legacy, env, "config", "plinth.run") not in (None, str(ctx.run.uid)):
            # Published on this node before the repositories were kept in the database, and not moved.
            raise ActionError(f"repository {owner}/{repo} already exists; choose another name")
        shutil.rmtree(checkout, ignore_errors=True)
        checkout.parent.mkdir(parents=True, exist_ok=True)
        bundle = checkout.parent / f".{repo}.bundle"
        try:
            commit = _publish_into(ctx, bundle, checkout, source, branch, env)
            downloads.save_bundle(repository, bundle)
        finally:
            bundle.unlink(missing_ok=True)
        type(repository).objects.filter(pk=repository.pk).update(commit=commit)
    except BaseException:
        # Never leave half a repository behind (a full disk, a failed commit, the time limit): it would
        # look published, and it would hold the name against the retry of this run.
        shutil.rmtree(checkout, ignore_errors=True)
        downloads.delete_bundle(repository)
        repository.delete()
        raise
    output = publish_output(owner, repo, branch, commit)
    ctx.state["repoContentsUrl"] = output["repoContentsUrl"]
    ctx.log(f"published {owner}/{repo} (commit {commit[:10]}); download it from the run page")
    return output


def publish_output(owner: str, repo: str, branch: str, commit: str) -> dict:
    """What publish:git gives the next steps (the executor also renders later steps with it, before
    publishing: see check_registration)."""
    from django.urls import reverse

    return {
        "remoteUrl": reverse("scaffolder:repository", args=[owner, repo]),
        "repoContentsUrl": f"{PUBLISHED}{owner}/{repo}",
        "commitHash": commit,
        "cloneCommand": f"git clone -b {branch} {repo}.bundle {repo}",
    }


def _publish_into(ctx: ActionContext, bundle: Path, checkout: Path, source: Path, branch: str, env: dict) -> str:
    """Commit the workspace, write the history as `bundle` and check it out (this node's cache)."""
    git_dir = ctx.workspace.root.parent / f"{ctx.workspace.root.name}.git"
    shutil.rmtree(git_dir, ignore_errors=True)
    work = ["--git-dir", str(git_dir), "--work-tree", str(source)]
    git("init", "-q", "-b", branch, "--separate-git-dir", str(git_dir), str(source), env=env)
    (source / ".git").unlink(missing_ok=True)  # the gitfile `init` leaves; the workspace keeps no .git
    git(*work, "add", "-A", env=env)
    message = str(ctx.input.get("gitCommitMessage") or f"Initial commit from template {ctx.template.name}")
    git(*work, "commit", "-q", "-m", message, env=env)
    commit = git(*work, "rev-parse", "HEAD", env=env)
    git("--git-dir", str(git_dir), "bundle", "create", "-q", str(bundle), "--all", env=env)
    shutil.rmtree(git_dir, ignore_errors=True)
    git("clone", "-q", "-b", branch, str(bundle), str(checkout), env=env)
    return commit


@action(
    "publish:zip",
    description="Pack the workspace as a zip archive to download from the run page.",
    publishes=True,
)
def publish_zip(ctx: ActionContext) -> dict:
    from django.urls import reverse

    source = ctx.workspace.path(str(ctx.input.get("sourcePath") or "."), what="sourcePath")
    files = walk_files(source, what="workspace")
    # Packed beside the workspace (node-local scratch, removed with it), then stored where any web
    # node can serve it.
    with tempfile.TemporaryDirectory(prefix="zip-", dir=ctx.workspace.root.parent) as scratch:
        target = Path(scratch) / f"{ctx.run.uid}.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for rel, path in files:
                archive.write(path, rel)
        downloads.save(ctx.run.uid, target)
    url = reverse("scaffolder:download", args=[ctx.run.uid])
    ctx.log(f"packed {_files(len(files))} into a zip archive")
    return {"downloadUrl": url, "remoteUrl": url}
