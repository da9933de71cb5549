"""Which PACS the project talks to: set by whoever runs it, never typed by a user.

A ``[pacs]`` section (the app's ``.streamlit/secrets.toml``, or the TOML file named by
``HCT_PACS_CONFIG`` for the command line) and ``HCT_PACS_*`` environment variables (which win) give:

- ``url``: the DICOMweb service root (``https://pacs.example.org/dicom-web``);
- ``qido_prefix``, ``wado_prefix``, ``stow_prefix``: path prefixes of servers that split the services;
- ``username`` and ``password`` (HTTP basic), or ``token`` (HTTP bearer);
- ``timeout`` (seconds per request, default 30), ``max_instances`` (MG instances retrieved per study,
  default 16) and ``max_instance_mb`` (one instance's size, default 200, the app's upload bound).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import tomllib

from hct.errors import ConfigError

ENV_PREFIX = "HCT_PACS_"
KEYS = (
    "url",
    "qido_prefix",
    "wado_prefix",
    "stow_prefix",
    "username",
    "password",
    "token",
    "timeout",
    "max_instances",
    "max_instance_mb",
)


@dataclass(frozen=True)
class PacsConfig:
    """A DICOMweb server and how to sign in to it (the secrets are left out of its ``repr``)."""

    url: str
    qido_prefix: str | None = None
    wado_prefix: str | None = None
    stow_prefix: str | None = None
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    timeout: float = 30.0
    max_instances: int = 16
    max_instance_mb: int = 200

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(
                f"the PACS url must start with https:// (or http://), got {self.url!r}; fix [pacs] url or HCT_PACS_URL"
            )
        if self.token and (self.username or self.password):
            raise ConfigError("give the PACS either a token or a username and password, not both")
        if self.timeout <= 0 or self.max_instances < 1 or self.max_instance_mb < 1:
            raise ConfigError("the PACS timeout, max_instances and max_instance_mb must be positive")


def _convert(key: str, value: object) -> object:
    try:
        if key == "timeout":
            return float(value)
        if key in ("max_instances", "max_instance_mb"):
            return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"PACS setting {key} must be a number, got {value!r}") from None
    return str(value)


def file_section(path: str | os.PathLike) -> dict:
    """The ``[pacs]`` section of a TOML file (empty when it has none)."""
    try:
        with open(path, "rb") as handle:
            return dict(tomllib.load(handle).get("pacs", {}))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"cannot read the PACS configuration {path}: {err}") from None


def pacs_config(section: Mapping | None = None, env: Mapping[str, str] = os.environ) -> PacsConfig | None:
    """The configured PACS: ``section`` (a ``[pacs]`` mapping; default: the file ``HCT_PACS_CONFIG``
    names) overridden by ``HCT_PACS_*`` variables; ``None`` when no url is set."""
    if section is None:
        section = file_section(env["HCT_PACS_CONFIG"]) if env.get("HCT_PACS_CONFIG") else {}
    unknown = set(section) - set(KEYS)
    if unknown:
        raise ConfigError(f"unknown [pacs] settings {sorted(unknown)}; known: {', '.join(KEYS)}")
    values = {key: section[key] for key in KEYS if section.get(key) not in (None, "")}
    values |= {key: env[ENV_PREFIX + key.upper()] for key in KEYS if env.get(ENV_PREFIX + key.upper())}
    if "url" not in values:
        return None
    return PacsConfig(**{key: _convert(key, value) for key, value in values.items()})
