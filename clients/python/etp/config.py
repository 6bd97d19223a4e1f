"""Where the client finds ETP: `etp login` stores the URL and API key in the user's config dir
(mode 0600); `ETP_URL` and `ETP_API_KEY` in the environment override what is stored."""

import json
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from etp.errors import ConfigError

URL_ENV = "ETP_URL"
API_KEY_ENV = "ETP_API_KEY"
CONFIG_ENV = "ETP_CONFIG"  # another config file (tests, several stacks)


@dataclass(frozen=True)
class Config:
    url: str
    api_key: str

    def __repr__(self) -> str:  # never print the secret
        return f"Config(url={self.url!r}, api_key='etpk_…')"


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """`$ETP_CONFIG`, else `config.json` in the platform's config dir for `etp`
    (`$XDG_CONFIG_HOME/etp` or `~/.config/etp` on Linux, `~/Library/Application Support/etp`
    on macOS, `%APPDATA%\\etp` on Windows)."""
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    home = Path(env.get("HOME") or Path.home())
    if sys.platform == "win32":
        base = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    return base / "etp" / "config.json"


def _stored(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a JSON object")
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def load_config(
    *, url: str | None = None, api_key: str | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Explicit values first, then the environment, then the stored file."""
    env = os.environ if env is None else env
    stored: dict[str, str] | None = None

    def pick(given: str | None, env_name: str, field: str) -> str | None:
        nonlocal stored
        if given:
            return given
        if env.get(env_name):
            return env[env_name]
        if stored is None:
            stored = _stored(config_path(env))
        return stored.get(field)

    found_url = pick(url, URL_ENV, "url")
    found_key = pick(api_key, API_KEY_ENV, "api_key")
    if not found_url or not found_key:
        absent = [n for n, v in (("URL", found_url), ("API key", found_key)) if not v]
        missing = " and no ".join(absent)
        raise ConfigError(
            f"no {missing}: run `etp login --url URL --api-key KEY` or set "
            f"{URL_ENV} and {API_KEY_ENV}"
        )
    return Config(url=found_url.rstrip("/"), api_key=found_key)


def load_url(url: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The URL alone (commands that sign in with a password need no API key)."""
    env = os.environ if env is None else env
    found = url or env.get(URL_ENV) or _stored(config_path(env)).get("url")
    if not found:
        raise ConfigError(f"no URL: give --url, set {URL_ENV}, or run `etp login`")
    return found.rstrip("/")


def save_config(config: Config, env: Mapping[str, str] | None = None) -> Path:
    """Writes the file with mode 0600 from the start (`mkstemp` creates it so: never readable by
    others, even briefly), replacing any earlier one atomically."""
    path = config_path(env)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump({"url": config.url, "api_key": config.api_key}, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
