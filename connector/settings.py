"""Configuration from the environment, validated once at start-up (every problem reported at once)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields

from connector.store.crypto import TokenCipher
from connector.store.db import default_database_url
from crm_adapters.errors import ConfigError

_DEV_SECRET = "dev-only-insecure-secret-key-change-me"
_DEV_TOKEN_KEY = "ZGV2LW9ubHktdG9rZW4ta2V5LWNoYW5nZS1tZS0zMmI"  # 32 bytes, for the embedded demo only


@dataclass(frozen=True)
class Settings:
    secret_key: str = field(default=_DEV_SECRET, repr=False)
    token_encryption_key: str = field(default=_DEV_TOKEN_KEY, repr=False)
    public_base_url: str = "http://localhost:5000"
    database_url: str | None = None  # None: the embedded SQLite file
    redis_url: str | None = None  # None: jobs run in-process
    hubspot_client_id: str = ""
    hubspot_client_secret: str = field(default="", repr=False)
    hubspot_base_url: str = "https://api.hubapi.com"
    hubspot_app_base_url: str = "https://app.hubspot.com"
    hubspot_rate_per_10s: int = 110
    salesforce_client_id: str = ""
    salesforce_client_secret: str = field(default="", repr=False)
    salesforce_login_url: str = "https://login.salesforce.com"
    data_retention_days: int = 30
    testing: bool = False
    home: str = field(default="var", metadata={"env": "SALESLOOP_HOME"})  # the embedded SQLite file and demo files
    loop_workers: int = field(default=0, metadata={"env": "SALESLOOP_LOOP_WORKERS"})  # 0: the cores (at most 4)
    lock_ttl_s: float = field(default=30.0, metadata={"env": "SALESLOOP_LOCK_TTL"})  # a tenant lock's lease
    lock_wait_s: float = field(default=120.0, metadata={"env": "SALESLOOP_LOCK_WAIT"})  # wait for a busy tenant
    log_level: str = "WARNING"

    @property
    def embedded(self) -> bool:
        return self.redis_url is None

    @property
    def store_url(self) -> str:
        """DATABASE_URL, else the embedded SQLite file under SALESLOOP_HOME."""

        return self.database_url or default_database_url(self.home)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every setting; raise one ConfigError listing every missing or invalid key."""
        env = os.environ if env is None else env
        problems: list[str] = []
        values: dict[str, object] = {}
        for f in fields(cls):
            key = f.metadata.get("env", f.name.upper())
            if key not in env or env[key] == "":
                continue
            try:
                values[f.name] = _parse(f, env[key])
            except ValueError:
                problems.append(f"{key} must be {'an integer' if f.type in ('int', int) else 'a number'}, got {env[key]!r}")
        settings = cls(**values)  # type: ignore[arg-type]
        problems.extend(settings.problems())
        if problems:
            raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
        return settings

    def problems(self) -> list[str]:
        """What is wrong; a production deployment (REDIS_URL set) must not run on dev secrets."""
        problems = []
        if not self.public_base_url.startswith(("http://", "https://")):
            problems.append(f"PUBLIC_BASE_URL must be an http(s) URL, got {self.public_base_url!r}")
        if not self.embedded and not self.testing:
            if self.secret_key == _DEV_SECRET:
                problems.append("SECRET_KEY must be set when REDIS_URL is (a deployed app)")
            if self.token_encryption_key == _DEV_TOKEN_KEY:
                problems.append("TOKEN_ENCRYPTION_KEY must be set when REDIS_URL is (a deployed app)")
        if self.hubspot_client_id and not self.hubspot_client_secret:
            problems.append("HUBSPOT_CLIENT_SECRET is required when HUBSPOT_CLIENT_ID is set")
        if self.salesforce_client_id and not self.salesforce_client_secret:
            problems.append("SALESFORCE_CLIENT_SECRET is required when SALESFORCE_CLIENT_ID is set")
        try:
            TokenCipher.from_key_text(self.token_encryption_key)
        except ValueError as exc:
            problems.append(f"TOKEN_ENCRYPTION_KEY: {exc}")
        return problems


def _parse(f: Field[object], raw: str) -> object:
    """One environment value as its field's type (ValueError when it is not one)."""
    if f.type in ("int", int):
        return int(raw)
    if f.type in ("float", float):
        return float(raw)
    if f.type in ("bool", bool):
        return raw.lower() in ("1", "true", "yes")
    return raw


def usable_cores() -> int:
    """The cores this process may use (its CPU affinity), at most 4: the default for the loops' and readers' workers
    (Settings.loop_workers, SALESLOOP_LOOP_WORKERS, overrides it)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return min(4, cores)
