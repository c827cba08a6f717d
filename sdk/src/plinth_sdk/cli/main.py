"""The `plinth` command. Start-up stays cheap (`plinth --help` imports Click and nothing else): the
command groups live in their own modules, imported only when one of them runs, and the HTTP client
and Rich only when a command needs them.

Exit codes (docs in sdk/docs/cli.md, printed by `plinth --help`):
0 ok · 1 a check failed (invalid descriptor, rejected request, failed run, wait timed out) · 2 usage
(bad arguments or input file, unknown profile, a URL or token that cannot be used, a bad PLINTH_*
variable, a field the API refused) · 3 authentication or permission · 4 not found · 5 conflict (the
object's state does not allow it) · 6 server unreachable or failing (connection, TLS, timeout, 5xx, an
answer that is not the API's JSON) · 130 interrupted (Ctrl-C)."""

from __future__ import annotations

import os
import sys

import click

from .errors import exit_code_for, one_line

EPILOG = """\b
Exit codes: 0 ok, 1 a check failed, 2 usage or invalid input, 3 authentication/permission,
4 not found, 5 conflict, 6 server unreachable or failing, 130 interrupted (Ctrl-C).
Configuration: --url/--token, else PLINTH_URL/PLINTH_TOKEN, else the profile (--profile,
PLINTH_PROFILE) in ~/.config/plinth/config.toml written by `plinth login`."""

# name: (module, attribute, one-line help) — the help is here so that `plinth --help` imports nothing.
COMMANDS = {
    "login": ("plinth_sdk.cli.account", "login", "Store the server URL and a token in a profile (0600)."),
    "whoami": ("plinth_sdk.cli.account", "whoami", "Show who the token belongs to."),
    "catalog": ("plinth_sdk.cli.catalog", "catalog", "List, get, register, refresh and validate entities."),
    "search": ("plinth_sdk.cli.catalog", "search", "Search the portal."),
    "approvals": ("plinth_sdk.cli.approvals", "approvals", "Request, review and wait for approvals."),
    "templates": ("plinth_sdk.cli.templates", "templates", "List, show and run scaffolder templates."),
    "docs": ("plinth_sdk.cli.templates", "docs", "Open an entity's docs."),
    "insights": ("plinth_sdk.cli.insights", "insights", "Usage analytics: active users, top templates, funnel."),
    "tokens": ("plinth_sdk.cli.account", "tokens", "List, create and revoke your API tokens."),
    "deployments": ("plinth_sdk.cli.deployments", "deployments", "Report where model versions serve (CD)."),
    "lineage": ("plinth_sdk.cli.lineage", "lineage", "Send OpenLineage events; the lineage graph and impact."),
    "scorecards": ("plinth_sdk.cli.scorecards", "scorecards", "Scorecards, their results, an entity's levels."),
    "slos": ("plinth_sdk.cli.slos", "slos", "SLOs: SLI, error budget left, burn rates."),
    "costs": ("plinth_sdk.cli.costs", "costs", "Costs per team and entity; import FOCUS exports."),
    "incidents": ("plinth_sdk.cli.incidents", "incidents", "Incidents: list, open, acknowledge, resolve, reopen."),
    "completion": ("plinth_sdk.cli.account", "completion", "Print the shell completion script."),
}


def _set_output(ctx: click.Context, _param, value):
    if value:
        ctx.find_root().obj.output = value


OUTPUT_OPTION = click.Option(["--output", "-o"], type=click.Choice(["table", "json", "yaml"]), default=None,
                             expose_value=False, callback=_set_output, is_eager=False,
                             help="Output format (also accepted before the command).")


def _with_output(cmd: click.Command) -> click.Command:
    """`-o/--output` on every command, so that `plinth catalog list -o json` works as well as
    `plinth -o json catalog list`."""
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _with_output(sub)
    elif not any(p.name == "output" for p in cmd.params):
        cmd.params.append(OUTPUT_OPTION)
    return cmd


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        import importlib

        module, attr, _ = COMMANDS[name]
        return _with_output(getattr(importlib.import_module(module), attr))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, _, short) in COMMANDS.items()])


class State:
    """What the root options say, shared by every command (ctx.obj)."""

    def __init__(self, url, token, profile, output, debug, color):
        self.url, self.token, self.profile = url, token, profile
        self.output, self.debug, self.color = output, debug, color
        self._client = None

    def client(self):
        if self._client is None:
            from .._http import CLI_USER_AGENT
            from ..client import Client

            retries = _env_number("PLINTH_RETRIES", "4", int, "a whole number of retries, 0 or more")
            timeout = _env_number("PLINTH_TIMEOUT", "30", float, "a number of seconds above 0")
            self._client = Client(self.url, self.token, profile=self.profile, max_retries=retries, timeout=timeout,
                                  user_agent=CLI_USER_AGENT)
        return self._client


def _env_number(name: str, default: str, kind: type, expected: str) -> int | float:
    """A number from the environment; a usage error naming the variable when it is not one (or is
    negative, zero for a timeout, infinite or not a number)."""
    import math

    from .errors import InputError

    text = os.environ.get(name, "").strip() or default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < 0 or (kind is float and value == 0):
        raise InputError(f"{name}={text!r}: expected {expected}")
    return value


OUTPUTS = ("table", "json", "yaml")


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"],
                                                             "auto_envvar_prefix": None})
@click.option("--url", metavar="URL", help="The portal's address (default: PLINTH_URL, then the profile).")
@click.option("--token", metavar="TOKEN", help="An API token (default: PLINTH_TOKEN, then the profile).")
@click.option("--profile", "-p", metavar="NAME", help="A profile of the config file (default: PLINTH_PROFILE).")
@click.option("--output", "-o", type=click.Choice(["table", "json", "yaml"]), default=None,
              help="Output format (default: table; PLINTH_OUTPUT).")
@click.option("--debug", is_flag=True, help="Show tracebacks and HTTP details on errors.")
@click.option("--no-color", is_flag=True, help="No colour (also when not a terminal, or NO_COLOR is set).")
@click.version_option("0.1.0", prog_name="plinth")
@click.pass_context
def cli(ctx: click.Context, url, token, profile, output, debug, no_color):
    """Plinth from the terminal: the catalog, approvals, templates and docs."""
    color = not no_color and not os.environ.get("NO_COLOR") and sys.stdout.isatty()
    env_output = os.environ.get("PLINTH_OUTPUT", "").strip()
    if not output and env_output and env_output not in OUTPUTS:
        from .errors import InputError

        raise InputError(f"PLINTH_OUTPUT={env_output!r}: expected one of {', '.join(OUTPUTS)}")
    ctx.obj = State(url, token, profile, output or env_output or "table", debug, color)
    ctx.color = color


def main(argv: list[str] | None = None) -> int:
    """Run the command; map every failure to one line on stderr and a documented exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        rv = cli.main(args=args, prog_name="plinth", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort as exc:
        # Click turns Ctrl-C (and end of input at a prompt) into Abort when not standalone.
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
            click.echo("plinth: interrupted", err=True)
            return 130
        click.echo("plinth: aborted", err=True)
        return 1
    except click.ClickException as exc:  # usage errors: Click prints them with the command's usage
        exc.show()
        return 2 if isinstance(exc, click.UsageError) else exc.exit_code
    except KeyboardInterrupt:
        click.echo("plinth: interrupted", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 — the one place that turns any failure into one line
        if debug:
            import traceback

            traceback.print_exc()
        click.echo(f"plinth: error: {one_line(exc)}", err=True)
        return exit_code_for(exc)
    return rv if isinstance(rv, int) else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
