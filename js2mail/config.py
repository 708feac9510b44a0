"""Settings: defaults < config file (TOML) < environment.

The home folder is `--home`, else `JS2MAIL_HOME`, else `~/.js2mail`. The config file is
`JS2MAIL_CONFIG` when set, else `<home>/config.toml`; it need only hold what differs from the
defaults. Every setting can also be set from the environment as `JS2MAIL_<SECTION>_<KEY>`
(dots in the section become underscores: `JS2MAIL_PROVIDERS_GOOGLE_TOKEN_URI`). Lists in the
environment are comma-separated. `config.example.toml` documents every setting.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from js2mail.errors import ConfigError

DEFAULT_RETRY_SCHEDULE = [60, 300, 1500, 7200, 36000, 86400]


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8025
    public_url: str = ""  # default http://{host}:{port}; see Settings.public_url
    trusted_proxies: list[str] = field(default_factory=list)
    max_body_bytes: int = 40 * 1024 * 1024


@dataclass
class DatabaseConfig:
    url: str = ""  # default: sqlite file js2mail.db in the home
    synchronous: str = "FULL"  # FULL: an accepted message survives power loss; NORMAL: only a crash
    busy_timeout_ms: int = 5000


@dataclass
class RateLimitConfig:
    rate: float = 10.0  # requests per second per application
    burst: int = 50


@dataclass
class DispatchConfig:
    retry_schedule: list[float] = field(default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE))
    poll_interval: float = 1.0  # seconds between scans for due messages
    concurrency_per_mailbox: int = 4  # parallel sends (SMTP connections) per mailbox
    batch_size: int = 200  # messages claimed per scan
    lease_seconds: float = 300.0
    send_timeout: float = 60.0
    max_recipients: int = 50
    max_schedule_days: float = 30.0  # how far ahead scheduledAt may be


@dataclass
class PrivacyConfig:
    retention_days: int = 30  # send logs and idempotency records are purged after this


@dataclass
class WebhooksConfig:
    retry_schedule: list[float] = field(default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE))
    allow_private: bool = False
    allowed_hosts: list[str] = field(default_factory=list)
    timeout: float = 10.0
    poll_interval: float = 1.0


@dataclass
class FormsConfig:
    rate_per_minute: int = 10  # submissions per minute per client IP
    max_file_bytes: int = 10 * 1024 * 1024
    max_total_bytes: int = 25 * 1024 * 1024
    max_fields: int = 100


@dataclass
class MetricsConfig:
    enabled: bool = False  # GET /metrics (Prometheus); off: 404
    token: str = ""  # when set, a scrape needs "Authorization: Bearer <token>"; unset: loopback clients only


@dataclass
class DashboardConfig:
    enabled: bool = True  # /dashboard, signed in with `js2mail dashboard link`; off: 404


@dataclass
class GoogleConfig:
    token_uri: str = "https://oauth2.googleapis.com/token"
    auth_uri: str = "https://accounts.google.com/o/oauth2/auth"
    api_base: str = "https://gmail.googleapis.com"


@dataclass
class MicrosoftConfig:
    authority: str = "https://login.microsoftonline.com"
    graph_base: str = "https://graph.microsoft.com/v1.0"


@dataclass
class ProvidersConfig:
    google: GoogleConfig = field(default_factory=GoogleConfig)
    microsoft: MicrosoftConfig = field(default_factory=MicrosoftConfig)


@dataclass
class Settings:
    home: Path = field(default_factory=lambda: Path("~/.js2mail").expanduser())
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    dispatch: DispatchConfig = field(default_factory=DispatchConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    forms: FormsConfig = field(default_factory=FormsConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    providers: ProvidersConfig = field(default_factory=ProvidersConfig)

    @property
    def db_path(self) -> Path:
        url = self.database.url
        if not url:
            return self.home / "js2mail.db"
        if url.startswith("sqlite:///"):
            return Path(url.removeprefix("sqlite:///")).expanduser()
        raise ConfigError(
            f"database.url {url!r} is not supported yet: only sqlite:///PATH (PostgreSQL is planned)",
            code="unsupported_database",
        )

    @property
    def key_file(self) -> Path:
        return self.home / "master.key"

    @property
    def public_url(self) -> str:
        return (self.server.public_url or f"http://{self.server.host}:{self.server.port}").rstrip("/")


def home_from_env(home: str | os.PathLike[str] | None = None) -> Path:
    if home:
        return Path(home).expanduser()
    env = os.environ.get("JS2MAIL_HOME")
    return Path(env).expanduser() if env else Path("~/.js2mail").expanduser()


def load_settings(home: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> Settings:
    environ = dict(os.environ if env is None else env)
    settings = Settings(home=home_from_env(home) if env is None else _home_in(home, environ))
    config_path = Path(environ["JS2MAIL_CONFIG"]) if environ.get("JS2MAIL_CONFIG") else settings.home / "config.toml"
    if config_path.exists():
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{config_path}: not valid TOML: {exc}", code="config_invalid") from exc
        _apply_table(settings, data, str(config_path))
    elif environ.get("JS2MAIL_CONFIG"):
        raise ConfigError(f"JS2MAIL_CONFIG names {config_path}, which does not exist", code="config_missing")
    _apply_env(settings, environ)
    if not 1 <= settings.server.port <= 65535:
        raise ConfigError(f"server.port {settings.server.port} is not a port (1-65535): check [server] port in "
                          f"{config_path} and JS2MAIL_SERVER_PORT", code="config_invalid")
    return settings


def _home_in(home: str | os.PathLike[str] | None, environ: dict[str, str]) -> Path:
    if home:
        return Path(home).expanduser()
    return Path(environ.get("JS2MAIL_HOME") or "~/.js2mail").expanduser()


def _apply_table(obj: Any, data: dict[str, Any], where: str, prefix: str = "") -> None:
    hints = get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj) if f.name != "home"}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"{where}: unknown setting {dotted!r}", code="config_unknown_setting")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: [{dotted}] must be a table", code="config_invalid")
            _apply_table(current, value, where, dotted + ".")
        else:
            setattr(obj, key, _coerce(value, hints[key], dotted, where))


def _apply_env(settings: Settings, environ: dict[str, str]) -> None:
    for path, owner, name, hint in _leaves(settings):
        var = "JS2MAIL_" + "_".join(path).upper()
        if var in environ:
            raw: Any = environ[var]
            origin = get_origin(hint)
            if origin is list:
                raw = [part.strip() for part in raw.split(",") if part.strip()]
            setattr(owner, name, _coerce(raw, hint, ".".join(path), var))


def _leaves(obj: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any, str, Any]]:
    out = []
    hints = get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if f.name == "home":
            continue
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out.extend(_leaves(value, (*path, f.name)))
        else:
            out.append(((*path, f.name), obj, f.name, hints[f.name]))
    return out


def _coerce(value: Any, hint: Any, name: str, where: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        hint = next(a for a in get_args(hint) if a is not type(None))
        origin = get_origin(hint)
    try:
        if origin is list:
            (item,) = get_args(hint)
            if not isinstance(value, list):
                raise TypeError("expected a list")
            return [_coerce(v, item, name, where) for v in value]
        if hint is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return value.lower() in ("1", "true", "yes", "on")
            raise TypeError("expected true or false")
        if hint is int:
            if isinstance(value, bool):
                raise TypeError("expected an integer")
            return int(value)
        if hint is float:
            if isinstance(value, bool):
                raise TypeError("expected a number")
            return float(value)
        if hint is str:
            if not isinstance(value, str):
                raise TypeError("expected a string")
            return value
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: setting {name!r}: {exc}", code="config_invalid") from exc
    return value
