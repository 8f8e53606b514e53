"""The managed plugin's settings: a config built from NFSVOL_* environment variables.

`docker plugin set` can only set the manifest's env, so a managed plugin is
configured there: one YAML document, or one share's settings. Either way the
result goes through `nfsvol.config.parse_config`, with the same checks and
messages as a config file.
"""

import re
from collections.abc import Mapping
from typing import Any

import yaml

from nfsvol.config import Config, ShareType, parse_config
from nfsvol.errors import ConfigError

# A managed plugin is configured through its env: one YAML document, or one share's settings.
ENV_CONFIG = "NFSVOL_CONFIG"
ENV_SHARE = {
    "NFSVOL_SERVERS": "servers",
    "NFSVOL_EXPORT": "export",
    "NFSVOL_VERSION": "version",
    "NFSVOL_OPTIONS": "options",
    "NFSVOL_ON_REMOVE": "on_remove",
}
ENV_TOP = {
    "NFSVOL_STATE_DIR": "state_dir",
    "NFSVOL_LOG_LEVEL": "log_level",
    "NFSVOL_MOUNT_TIMEOUT": "mount_timeout",
    "NFSVOL_LEASE_TTL": "lease_ttl",
    "NFSVOL_IDLE_UNMOUNT": "idle_unmount",
}
ENV_SHARE_NAME = "main"
_NUMBERS = ("mount_timeout", "lease_ttl", "idle_unmount")


def config_from_env(env: Mapping[str, str]) -> Config:
    """Build the config from NFSVOL_* variables, as a managed plugin's settings give them.

    Either NFSVOL_CONFIG holds a whole YAML document, or NFSVOL_SERVERS and
    NFSVOL_EXPORT (plus optional version, options, on_remove) describe one
    share named `main`. Empty values count as unset, as `docker plugin set X=` leaves them.
    """
    given = {k: v.strip() for k, v in env.items() if k.startswith("NFSVOL_") and v.strip()}
    known = (ENV_CONFIG, *ENV_SHARE, *ENV_TOP)
    problems = [
        f"{k}: unknown setting; known settings are: {', '.join(known)}"
        for k in sorted(given)
        if k not in known
    ]
    raw = _env_document(given, problems)
    for var, key in ENV_TOP.items():
        if var in given and key in raw:
            problems.append(f"{var}: {key} is also set in {ENV_CONFIG}; set it in one place")
        elif var in given:
            raw[key] = _number(given[var]) if key in _NUMBERS else given[var]
    if problems:
        raise ConfigError(
            f"plugin settings have {len(problems)} problem(s):\n  " + "\n  ".join(problems)
        )
    return parse_config(raw, source="plugin settings (NFSVOL_*)")


def _env_document(given: Mapping[str, str], out: list[str]) -> dict[str, Any]:
    """The YAML document the settings stand for; problems go to `out`."""
    share_vars = [var for var in ENV_SHARE if var in given]
    if ENV_CONFIG in given:
        if share_vars:
            out.append(f"{ENV_CONFIG}: set it or {', '.join(share_vars)}, not both")
        return _env_yaml(given[ENV_CONFIG], out)
    if not share_vars:
        out.append(
            f"set {ENV_CONFIG} (a YAML config) or NFSVOL_SERVERS and NFSVOL_EXPORT, "
            "e.g. docker plugin set <plugin> NFSVOL_SERVERS=nfs1 NFSVOL_EXPORT=/srv/docker"
        )
        return {}
    share: dict[str, Any] = {"type": ShareType.NFS}
    for var in share_vars:
        value = given[var]
        if var in ("NFSVOL_SERVERS", "NFSVOL_OPTIONS"):
            separators = "," if var == "NFSVOL_OPTIONS" else ", "
            words = (w.strip() for w in re.split(f"[{separators}]", value))
            share[ENV_SHARE[var]] = [w for w in words if w]
        else:
            share[ENV_SHARE[var]] = value
    return {"shares": {ENV_SHARE_NAME: share}}


def _number(text: str) -> float | str:
    """A number if `text` spells one; otherwise `text`, for parse_config to refuse."""
    try:
        return float(text)
    except ValueError:
        return text


def _env_yaml(text: str, out: list[str]) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        out.append(f"{ENV_CONFIG}: not valid YAML: {exc}")
        return {}
    if not isinstance(raw, dict):
        out.append(f"{ENV_CONFIG}: must be a YAML mapping with a `shares` key")
        return {}
    return raw
