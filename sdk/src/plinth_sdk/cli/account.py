"""`plinth login`, `plinth whoami`, `plinth completion`."""

from __future__ import annotations

import sys

import click

from .output import note, record, state


@click.command()
@click.option("--url", "login_url", metavar="URL", help="The portal's address, e.g. https://plinth.example.com.")
@click.option("--token", "login_token", metavar="TOKEN", help="An API token (Account → API tokens in the portal).")
@click.option("--token-stdin", is_flag=True, help="Read the token from standard input (CI secrets).")
@click.option("--profile", "login_profile", default=None, metavar="NAME", help="Profile name (default: default).")
@click.option("--default/--no-default", "make_default", default=True, help="Make it the default profile.")
def login(login_url, login_token, token_stdin, login_profile, make_default):
    """Check a URL and token against the server and store them in a profile of
    ~/.config/plinth/config.toml (file mode 0600)."""
    from .. import config
    from .._http import CLI_USER_AGENT
    from ..client import Client

    st = state()
    url = login_url or st.url or click.prompt("Portal URL")
    if token_stdin:
        token = sys.stdin.readline().strip()
    else:
        token = login_token or st.token or click.prompt("API token", hide_input=True)
    if not token:
        raise click.UsageError("an API token is required")
    name = login_profile or st.profile or config.DEFAULT_PROFILE
    with Client(url.rstrip("/"), token, user_agent=CLI_USER_AGENT) as client:
        me = client.me()  # refuses a wrong token before anything is written
    path = config.save_profile(name, url=url.rstrip("/"), token=token, make_default=make_default)
    note(f"Signed in to {url.rstrip('/')} as {me.username} (profile '{name}', saved to {path}).")


@click.command()
def whoami():
    """Show the user, teams and roles of the current token."""
    st = state()
    client = st.client()
    me = client.me()
    record(me, [("user", lambda m: m.username), ("url", lambda m: client.url),
                ("profile", lambda m: client.profile or "-"),
                ("platform admin", lambda m: "yes" if m.is_platform_admin else "no"),
                ("teams", lambda m: [f"{t.team} ({t.role})" for t in m.teams])])


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]), default="bash")
def completion(shell):
    """Print the completion script: `eval "$(plinth completion bash)"` in ~/.bashrc."""
    from click.shell_completion import get_completion_class

    from .main import cli

    cls = get_completion_class(shell)
    click.echo(cls(cli, {}, "plinth", "_PLINTH_COMPLETE").source())
