"""Where the client finds the registry's URL and token, and where it keeps its state.

Explicit arguments win, then the environment (``REGISTRY_URL``, ``REGISTRY_TOKEN``), then the
per-user config file that ``registry login`` writes (``~/.config/model-registry/config.json``,
or ``$REGISTRY_CONFIG``), readable only by its owner because it holds a token.
"""

import json
import os
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"


def config_path():
    if os.environ.get("REGISTRY_CONFIG"):
        return Path(os.environ["REGISTRY_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "model-registry" / "config.json"


def cache_dir():
    """Upload sessions in progress live here, so an interrupted push resumes."""
    if os.environ.get("REGISTRY_CACHE_DIR"):
        return Path(os.environ["REGISTRY_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "model-registry"


def load():
    try:
        return json.loads(config_path().read_text())
    except (OSError, ValueError):
        return {}


def save(url, token):
    """Write the URL and token to the config file, created with mode 0600 (its folder 0700)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, json.dumps({"url": url, "token": token}, indent=2) + "\n")
    return path


def write_private(path, text):
    """Replace ``path`` with ``text`` atomically, readable and writable by its owner only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)  # an existing file keeps its mode through O_CREAT
    os.replace(tmp, path)


def settings(url=None, token=None):
    """The URL and token to use: arguments, then the environment, then the config file."""
    stored = load()
    url = (url or os.environ.get("REGISTRY_URL") or stored.get("url") or DEFAULT_URL).rstrip("/")
    url = url.removesuffix("/api/v1")
    if token is None:
        token = os.environ.get("REGISTRY_TOKEN") or None
    if token is None and stored.get("token") and stored.get("url", "").rstrip("/") == url:
        token = stored["token"]  # the stored token goes only to the registry it was issued for
    return url, token
