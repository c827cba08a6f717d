"""`plinth login`, `plinth whoami`, `plinth tokens`, `plinth completion`."""

from __future__ import annotations

import sys

import click

from .output import note, record, state, table


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
    # The URL and token given here are all the client uses: a profile named by PLINTH_PROFILE (this
    # one, perhaps, not created yet) is not consulted.
    with Client(url, token, user_agent=CLI_USER_AGENT) as client:
        me = client.me()  # refuses a wrong token before anything is written
    path = config.save_profile(name, url=client.url, token=client.token, make_default=make_default)
    note(f"Signed in to {client.url} as {me.username} (profile '{name}', saved to {path}).")


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


TOKEN_COLUMNS = [("id", lambda t: t.id), ("name", lambda t: t.name), ("prefix", lambda t: t.prefix),
                 ("created", lambda t: t.created_at[:16]), ("last used", lambda t: (t.last_used_at or "-")[:16]),
                 ("expires", lambda t: (t.expires_at or "never")[:16]),
                 ("state", lambda t: "active" if t.active else ("revoked" if t.revoked_at else "expired"))]


@click.group()
def tokens():
    """Your API tokens: list, create (the secret is shown once), revoke."""


@tokens.command("list")
def tokens_list():
    """Your tokens, newest first (revoked and expired ones too)."""
    table(state().client().tokens.list(), TOKEN_COLUMNS, empty="No tokens.")


@tokens.command("create")
@click.argument("name")
@click.option("--expires-in-days", type=click.Choice(["7", "30", "90", "365"]), default=None,
              help="Days until it expires (default: never).")
def tokens_create(name, expires_in_days):
    """Create a token named NAME. Its secret is printed once, on stdout (everything else on stderr):
    `plinth tokens create ci > token.txt`."""
    token = state().client().tokens.create(name, expires_in_days=int(expires_in_days) if expires_in_days else None)
    if state().output == "table":
        note(f"Token {token.id} '{token.name}' created; the secret below is shown this once:")
        click.echo(token.secret)
    else:
        record(token, [])


@tokens.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
def tokens_revoke(token_id):
    """Revoke your token ID at once (see `plinth tokens list`)."""
    state().client().tokens.revoke(token_id)
    note(f"Token {token_id} revoked.")


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]), default="bash")
def completion(shell):
    """Print the completion script: `eval "$(plinth completion bash)"` in ~/.bashrc."""
    from click.shell_completion import get_completion_class

    from .main import cli

    cls = get_completion_class(shell)
    click.echo(cls(cli, {}, "plinth", "_PLINTH_COMPLETE").source())
