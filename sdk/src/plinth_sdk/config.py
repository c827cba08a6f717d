"""Where the client finds its server and token: arguments, then `PLINTH_URL` / `PLINTH_TOKEN`, then a
named profile of `~/.config/plinth/config.toml` (`$XDG_CONFIG_HOME/plinth/config.toml`, or the file
`PLINTH_CONFIG` names). The profile is the `profile` argument, else `PLINTH_PROFILE`, else the file's
`default_profile`, else `default`.

    default_profile = "prod"
    [profiles.prod]
    url = "https://plinth.example.com"
    token = "plt_…"

`plinth login` writes this file with mode 0600 (it holds a token)."""

from __future__ import annotations

import json
import os
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
    """The settings a client uses, by precedence: arguments > environment > config file."""
    env_url, env_token = os.environ.get("PLINTH_URL") or None, os.environ.get("PLINTH_TOKEN") or None
    wanted = profile or os.environ.get("PLINTH_PROFILE") or None
    data: dict = {}
    if wanted or not (url or env_url) or not (token or env_token):
        data = read_file()
    profiles = data.get("profiles", {})
    name = wanted or data.get("default_profile") or DEFAULT_PROFILE
    if wanted and name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"unknown profile '{name}' in {config_path()} (known: {known}); "
                          f"create it with `plinth login --profile {name}`")
    entry = profiles.get(name, {}) if isinstance(profiles.get(name, {}), dict) else {}
    final_url = url or env_url or entry.get("url")
    if not final_url:
        raise ConfigError("no server URL: pass url=, set PLINTH_URL, or run `plinth login`")
    final_token = token or env_token or entry.get("token")
    return Settings(url=str(final_url).rstrip("/"), token=final_token,
                    profile=name if name in profiles else None)


def _toml_string(value: str) -> str:
    # JSON's escapes (\" \\ \n \uXXXX) are all valid in a TOML basic string.
    return json.dumps(value, ensure_ascii=True)


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
                lines.append(f"{key} = {_toml_string(value)}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    os.chmod(tmp, 0o600)  # an existing .tmp kept its old mode through O_CREAT
    os.replace(tmp, path)
    return path
