"""Settings: defaults < config file (TOML) < environment.

The home folder is `--home`, else `JS2MAIL_HOME`, else `~/.js2mail`. The config file is
`JS2MAIL_CONFIG` when set, else `<home>/config.toml`; it need only hold what differs from the
defaults. Every setting can also be set from the environment as `JS2MAIL_<SECTION>_<KEY>`
(dots in the section become underscores: `JS2MAIL_PROVIDERS_GOOGLE_TOKEN_URI`). Lists in the
environment are comma-separated. `config.example.toml` documents every setting.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from js2mail.errors import ConfigError

DEFAULT_RETRY_SCHEDULE = [60, 300, 1500, 7200, 36000, 86400]
DAY = 86400
GIB = 1024 * 1024 * 1024

# What each numeric setting may be (inclusive). A numeric setting missing here must still be finite
# and not negative; test_config checks that every numeric setting is listed. For a list, the bounds
# apply to each item and the list may not be empty.
RANGES: dict[str, tuple[float, float]] = {
    "server.port": (1, 65535),
    "server.max_body_bytes": (1024, 4 * GIB),
    "server.max_connections": (1, 1_000_000),
    "server.header_timeout": (0.1, 3600),
    "server.keepalive_timeout": (0.1, 3600),
    "server.max_header_bytes": (1024, 16 * 1024 * 1024),
    "server.max_inflight_body_bytes": (1024, 64 * GIB),
    "limits.max_queued_messages": (1, 1_000_000_000),
    "limits.max_queued_bytes": (1024, 1024 * GIB),
    "database.busy_timeout_ms": (0, 600_000),
    "rate_limit.rate": (0.001, 1_000_000),
    "rate_limit.burst": (1, 1_000_000),
    "dispatch.retry_schedule": (1, 30 * DAY),
    "dispatch.poll_interval": (0.01, 3600),
    "dispatch.concurrency_per_mailbox": (1, 100),
    "dispatch.batch_size": (1, 10_000),
    "dispatch.lease_seconds": (1, DAY),
    "dispatch.send_timeout": (1, 3600),
    "dispatch.max_recipients": (1, 1000),
    "dispatch.max_schedule_days": (0.01, 400_000),  # the benchmarks schedule their mail centuries ahead
    "privacy.retention_days": (1, 3650),
    "webhooks.retry_schedule": (1, 30 * DAY),
    "webhooks.timeout": (0.1, 300),
    "webhooks.poll_interval": (0.01, 3600),
    "webhooks.concurrency_per_endpoint": (1, 100),
    "webhooks.redeliver_window_hours": (0, 24 * 365),
    "forms.rate_per_minute": (1, 100_000),
    "forms.max_file_bytes": (1, 4 * GIB),
    "forms.max_total_bytes": (1, 4 * GIB),
    "forms.max_fields": (1, 10_000),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "database.synchronous": ("FULL", "NORMAL", "EXTRA"),
}
MAX_LIST_ITEMS = 100


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8025
    public_url: str = ""  # default http://{host}:{port}; see Settings.public_url
    trusted_proxies: list[str] = field(default_factory=list)
    max_body_bytes: int = 40 * 1024 * 1024
    max_connections: int = 1000  # open HTTP connections; beyond it new ones get 503
    header_timeout: float = 10.0  # seconds to send a request's headers, else the connection is closed
    keepalive_timeout: float = 5.0  # seconds an idle keep-alive connection stays open
    max_header_bytes: int = 32 * 1024  # request line + headers; larger gets 431
    max_inflight_body_bytes: int = 96 * 1024 * 1024  # request bodies read or processed at once; beyond: 503


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
class LimitsConfig:
    max_queued_messages: int = 100_000  # per application: messages not yet sent, failed or cancelled
    max_queued_bytes: int = 1024 * 1024 * 1024  # per application: their total size


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
    concurrency_per_endpoint: int = 4  # deliveries in flight per endpoint; a hanging one holds up only itself
    redeliver_window_hours: float = 72.0  # a given-up delivery's sealed payload is kept this long for redelivery
    disable_after: str = "3d"  # an endpoint failing continuously this long is disabled (a duration: 72h, 3d)

    @property
    def disable_after_seconds(self) -> float:
        from js2mail.service.keys import parse_duration

        return parse_duration(self.disable_after)


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
    limits: LimitsConfig = field(default_factory=LimitsConfig)
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


def home_from_env(home: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The home: `--home`, else `$JS2MAIL_HOME`, else `~/.js2mail`."""
    if home:
        return Path(home).expanduser()
    return Path((os.environ if environ is None else environ).get("JS2MAIL_HOME") or "~/.js2mail").expanduser()


def load_settings(home: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> Settings:
    environ = dict(os.environ if env is None else env)
    settings = Settings(home=home_from_env(home, environ))
    if settings.home.exists() and not settings.home.is_dir():
        raise ConfigError(f"the home {settings.home} is a file, not a folder", code="home_not_a_folder",
                          hint="point --home / JS2MAIL_HOME at a folder (js2mail init creates it)")
    config_path = Path(environ["JS2MAIL_CONFIG"]) if environ.get("JS2MAIL_CONFIG") else settings.home / "config.toml"
    if config_path.exists():
        if not config_path.is_file():
            raise ConfigError(f"the config file {config_path} is not a file (a folder?)", code="config_invalid",
                              hint="JS2MAIL_CONFIG / <home>/config.toml must name a TOML file")
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{config_path}: cannot be read: {exc.strerror or exc}", code="config_invalid") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{config_path}: not valid TOML: {exc}", code="config_invalid") from exc
        _apply_table(settings, data, str(config_path))
    elif environ.get("JS2MAIL_CONFIG"):
        raise ConfigError(f"JS2MAIL_CONFIG names {config_path}, which does not exist", code="config_missing")
    _apply_env(settings, environ)
    _check_limits(settings)
    _check_webhooks(settings.webhooks, config_path)
    return settings


def _check_limits(settings: Settings) -> None:
    """What a range per key cannot say (ranges: `RANGES`, checked as each value is read)."""
    server = settings.server
    if server.max_inflight_body_bytes < server.max_body_bytes:
        raise ConfigError("setting 'server.max_inflight_body_bytes' must be at least server.max_body_bytes, "
                          "or the largest request could never be read", code="config_invalid")


def _check_webhooks(cfg: WebhooksConfig, config_path: Path) -> None:
    from js2mail.errors import ValidationError

    try:
        seconds = cfg.disable_after_seconds
    except ValidationError as exc:
        raise ConfigError(f"webhooks.disable_after: {exc.message} (in {config_path} or JS2MAIL_WEBHOOKS_DISABLE_AFTER)",
                          code="config_invalid") from None
    if not 0 < seconds < float("inf"):
        raise ConfigError(f"webhooks.disable_after must be a positive duration like 72h or 3d, not {cfg.disable_after!r}",
                          code="config_invalid")


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
    """`value` as the type `hint`, within the setting's range or choices, else one ConfigError that names
    the file or variable, the key, the value and what is allowed."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        hint = next(a for a in get_args(hint) if a is not type(None))
        origin = get_origin(hint)
    if origin is list:
        (item,) = get_args(hint)
        if not isinstance(value, list):
            raise _invalid(where, name, value, f"a list, each {_describe(item, name)}")
        if name in RANGES and not value:
            raise _invalid(where, name, value, f"a non-empty list, each {_describe(item, name)}")
        if len(value) > MAX_LIST_ITEMS:
            raise _invalid(where, name, value, f"at most {MAX_LIST_ITEMS} items")
        return [_coerce(v, item, name, where) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise _invalid(where, name, value, "true or false")
    if hint in (int, float):
        number = _number(value, integer=hint is int)
        low, high = RANGES.get(name, (0, math.inf))
        if number is None or not (low <= number <= high):
            raise _invalid(where, name, value, _describe(hint, name))
        return number
    if hint is str:
        if not isinstance(value, str):
            raise _invalid(where, name, value, "a string")
        if name in CHOICES:
            upper = value.upper()
            if upper not in CHOICES[name]:
                raise _invalid(where, name, value, _describe(hint, name))
            return upper
        return value
    return value


def _number(value: Any, *, integer: bool) -> float | int | None:
    """An int or a finite float from TOML (int/float) or the environment (str); None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = int(value.strip()) if integer else float(value.strip())
        except ValueError:
            return None
    if isinstance(value, float) and integer:
        return int(value) if value.is_integer() else None
    if isinstance(value, int):
        return value if integer else float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def _describe(hint: Any, name: str) -> str:
    if name in CHOICES:
        return "one of " + ", ".join(CHOICES[name])
    kind = {int: "an integer", float: "a number"}.get(hint, "a string")
    if hint in (int, float):
        low, high = RANGES.get(name, (0, math.inf))
        return f"{kind} from {_plain(low)} to {_plain(high)}" if math.isfinite(high) else f"{kind} >= {_plain(low)}"
    return kind


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _invalid(where: str, name: str, value: Any, allowed: str) -> ConfigError:
    shown = value if isinstance(value, str) else _toml_text(value)
    return ConfigError(f"{where}: {name} = {shown!s:.80} is not allowed: must be {allowed}", code="config_invalid")


def _toml_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return repr(value) if not isinstance(value, (list, dict)) else str(value)
