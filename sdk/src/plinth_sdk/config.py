"""Where the client finds its server and token: arguments, then `PLINTH_URL` / `PLINTH_TOKEN`, then a
named profile of `~/.config/plinth/config.toml` (`$XDG_CONFIG_HOME/plinth/config.toml`, or the file
`PLINTH_CONFIG` names). The profile is the `profile` argument, else `PLINTH_PROFILE`, else the file's
`default_profile`, else `default`.

    default_profile = "prod"
    [profiles.prod]
    url = "https://plinth.example.com"
    token = "plt_…"

`plinth login` writes this file with mode 0600 (it holds a token).

The URL must be an http:// or https:// address with a host, and the token (stripped of surrounding
whitespace, as a secret pasted with a newline or CR has it) must be printable ASCII without spaces:
anything else is a `ConfigError` at once, never a request that fails later (an error message never
shows the token)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

DEFAULT_PROFILE = "default"


@dataclass(frozen=True)
class Settings:
    url: str
    token: str | None
    profile: str | None  # the profile the values came from (None: arguments and environment only)


def config_path() -> Path:
    if os.environ.get("PLINTH_CONFIG"):
        return Path(os.environ["PLINTH_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "plinth" / "config.toml"


def read_file(path: Path | None = None) -> dict:
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    if not isinstance(data.get("profiles", {}), dict):
        raise ConfigError(f"{path}: `profiles` must be a table of named profiles")
    return data


def resolve(url: str | None = None, token: str | None = None, profile: str | None = None) -> Settings:
    """The settings a client uses, by precedence: arguments > environment > config file. A profile
    named by `PLINTH_PROFILE` need not exist when the arguments and environment give both the URL and
    the token (`plinth login --profile NAME` creates it); one named by the `profile` argument must."""
    env_url, env_token = os.environ.get("PLINTH_URL") or None, os.environ.get("PLINTH_TOKEN") or None
    wanted = profile or os.environ.get("PLINTH_PROFILE") or None
    complete = bool((url or env_url) and (token or env_token))
    data: dict = {}
    if wanted or not complete:
        data = read_file()
    profiles = data.get("profiles", {})
    name = wanted or data.get("default_profile") or DEFAULT_PROFILE
    if wanted and name not in profiles and (profile or not complete):
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"unknown profile '{name}' in {config_path()} (known: {known}); "
                          f"create it with `plinth login --profile {name}`")
    entry = profiles.get(name, {}) if isinstance(profiles.get(name, {}), dict) else {}
    final_url = url or env_url or entry.get("url")
    if not final_url:
        raise ConfigError("no server URL: pass url=, set PLINTH_URL, or run `plinth login`")
    where = f"profile '{name}' of {config_path()}"
    final_url = check_url(str(final_url), "url=/--url" if url else "PLINTH_URL" if env_url else where)
    final_token = check_token(token or env_token or entry.get("token"),
                              "token=/--token" if token else "PLINTH_TOKEN" if env_token else where)
    return Settings(url=final_url, token=final_token, profile=name if name in profiles else None)


def check_url(url: str, source: str = "the URL") -> str:
    """`url` without a trailing slash; a `ConfigError` unless it is an http(s) address with a host."""
    from urllib.parse import urlsplit

    url = url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme.lower() not in {"http", "https"} or not host:
        raise ConfigError(f"the server URL {url!r} (from {source}) is not an http:// or https:// address with a "
                          "host, e.g. https://plinth.example.com")
    return url


def check_token(token: object, source: str = "the token") -> str | None:
    """The token stripped of surrounding whitespace (None when empty); a `ConfigError`, which never
    shows the token, when what is left cannot travel in an HTTP header."""
    if token is None:
        return None
    if not isinstance(token, str):
        raise ConfigError(f"the token (from {source}) must be a string")
    token = token.strip()
    if any(not 33 <= ord(c) <= 126 for c in token):
        raise ConfigError(f"the token (from {source}) holds whitespace, control or non-ASCII characters; "
                          "copy it again from Account → API tokens")
    return token or None


_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_string(value: str) -> str:
    """A TOML basic string: text as it is (UTF-8, emoji included), quotes, backslashes and control
    characters escaped. A lone surrogate (undecodable bytes of a command line) cannot be written."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{value.encode('utf-8', 'replace').decode()!r} is not valid text") from None
    out = []
    for ch in value:
        if ch in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def save_profile(name: str, *, url: str, token: str, make_default: bool = False) -> Path:
    """Write (or replace) one profile, keeping the others; the file is created 0600 and rewritten
    atomically (a crash never leaves half a token file)."""
    path = config_path()
    data = read_file(path)
    profiles = dict(data.get("profiles", {}))
    profiles[name] = {**profiles.get(name, {}), "url": url, "token": token}
    default = name if make_default or not data.get("default_profile") else data["default_profile"]
    lines = [f"default_profile = {_toml_string(default)}", ""]
    for pname in sorted(profiles):
        lines.append(f"[profiles.{_toml_string(pname)}]")
        for key, value in profiles[pname].items():
            if isinstance(value, str):
                lines.append(f"{_toml_key(key)} = {_toml_string(value)}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    os.chmod(tmp, 0o600)  # an existing .tmp kept its old mode through O_CREAT
    os.replace(tmp, path)
    return path
