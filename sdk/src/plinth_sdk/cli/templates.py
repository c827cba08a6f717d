"""`plinth templates list|show|run` and `plinth docs open`."""

from __future__ import annotations

import click

from .errors import CheckFailed, InputError
from .output import dump, note, record, state, table


@click.group()
def templates():
    """Scaffolder templates: list, show, run."""


@templates.command("list")
@click.option("--type", "type_", help="Only templates of this spec.type.")
@click.option("--owner", help="Only templates owned by exactly this owner ref (team = group:default/team).")
def list_(type_, owner):
    """Templates you may run."""
    rows = state().client().templates.list(type=type_, owner=owner)
    table(rows, [("NAME", lambda t: t.name), ("TITLE", lambda t: t.title), ("TYPE", lambda t: t.type),
                 ("OWNER", lambda t: t.owner), ("RUNNABLE", lambda t: "yes" if t.runnable else "no")])


def _fields(template) -> list[str]:
    out = []
    for page in template.parameters:
        props = page.get("properties") or {}
        required = set(page.get("required") or [])
        for name, spec in props.items():
            kind = spec.get("type", "")
            star = "*" if name in required else ""
            extra = f" one of {', '.join(map(str, spec['enum']))}" if spec.get("enum") else ""
            out.append(f"{name}{star} ({kind}){extra}: {spec.get('title') or spec.get('description') or ''}".rstrip(": "))
    return out


@templates.command()
@click.argument("name")
def show(name):
    """A template and the values it asks for (* = required)."""
    template = state().client().templates.get(name)
    record(template, [("ref", lambda t: t.ref), ("title", lambda t: t.title), ("description", lambda t: t.description),
                      ("type", lambda t: t.type), ("owner", lambda t: t.owner),
                      ("runnable", lambda t: "yes" if t.runnable else "no"), ("values", _fields)])


def _values_loader():
    """YAML's safe loader without its timestamp rule: `date: 2024-01-01` stays the string it looks
    like (the API takes JSON, which has no dates), as a template's form would send it."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    return Loader


def _not_json(value, path: str = "", within: frozenset = frozenset()) -> tuple[str, str] | None:
    """(field, why) of the first value JSON cannot carry: binary (`!!binary`), NaN or infinity, a set,
    an explicitly tagged date, a recursive alias…; None when the whole value can be sent."""
    import math

    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, f"{value} is not a number JSON can carry")
    if isinstance(value, list | dict):
        if id(value) in within:
            return path, "a recursive alias cannot be sent as JSON"
        within = within | {id(value)}
    if isinstance(value, list):
        for index, item in enumerate(value):
            if found := _not_json(item, f"{path}[{index}]", within):
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str | int | float | bool) and key is not None:
                return path or "(top level)", f"a key of type {type(key).__name__} is not a JSON key"
            if found := _not_json(item, f"{path}.{key}" if path else str(key), within):
                return found
        return None
    what = "binary data (!!binary)" if isinstance(value, bytes) else f"a value of type {type(value).__name__}"
    return path, f"{what} cannot be sent as JSON; quote it to send it as text"


def read_values(path: str | None, sets: tuple[str, ...]) -> dict:
    values: dict = {}
    if path:
        import yaml

        try:
            with open(path, "rb") as handle:
                text = handle.read().decode("utf-8")
            loaded = yaml.load(text, Loader=_values_loader())  # noqa: S506 (a SafeLoader)
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded)") from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise InputError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', None) or exc})") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise InputError(f"{path}: the values file must be a YAML mapping of field: value")
        if found := _not_json(loaded):
            raise InputError(f"{path}: {found[0]}: {found[1]}")
        values.update(loaded)
    for pair in sets:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--set '{pair}': expected field=value")
        values[key] = value
    return values


@templates.command()
@click.argument("name")
@click.option("--values", "-f", "values_file", type=click.Path(dir_okay=False), help="A YAML file of field: value.")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="A value (after the file's).")
@click.option("--dry-run", is_flag=True, help="Render and check, publish nothing; lists the files.")
@click.option("--wait/--no-wait", "wait_", default=False, help="Stream the log until the run ends.")
@click.option("--timeout", type=float, default=900, show_default=True, help="Seconds to wait at most.")
def run(name, values_file, sets, dry_run, wait_, timeout):
    """Run template NAME with the values of --values/--set. With --wait the run's log streams to stderr
    and the exit code says how it ended (0 succeeded, 1 failed or cancelled)."""
    values = read_values(values_file, sets)
    client = state().client()
    if not wait_:
        started = client.templates.run(name, values, dry_run=dry_run)
        if state().output == "table":
            click.echo(started.id)
            note(f"Run {started.id} {started.status} — {client.url}{started.url}")
        else:
            dump(started, state().output)
        return
    finished = client.templates.run(name, values, dry_run=dry_run, wait=True, timeout=timeout,
                                    on_log=lambda entry: note(str(entry)))
    if state().output == "table":
        record(finished, [("run", lambda r: r.id), ("status", lambda r: r.status), ("error", lambda r: r.error),
                          ("output", lambda r: [f"{k}: {v}" for k, v in r.output.items()] if isinstance(r.output, dict)
                           else r.output),
                          ("files", lambda r: r.raw.get("files") if r.dry_run else None),
                          ("url", lambda r: client.url + r.url)])
    else:
        dump(finished, state().output)
    if not finished.succeeded:
        raise CheckFailed(f"run {finished.id} {finished.status}: {finished.error or 'see its log'}")


@click.group()
def docs():
    """An entity's documentation."""


@docs.command("open")
@click.argument("ref")
@click.option("--print", "print_only", is_flag=True, help="Print the address instead of opening a browser.")
def open_(ref, print_only):
    """Open REF's docs in the browser (REF: kind:namespace/name; the kind defaults to component)."""
    client = state().client()
    site = client.docs.site(ref)  # NotFoundError (exit 4) before any browser opens
    url = client.url + site.url
    if site.status not in {"ok", "partial"}:
        note(f"The docs of {site.entity_ref} are {site.status}.")
    if print_only or state().output != "table":
        if state().output == "table":
            click.echo(url)
        else:
            dump(site, state().output)
        return
    import webbrowser

    if not webbrowser.open(url):
        click.echo(url)
