"""Configuration (contract §1): TOML, then ``GUARDD_…`` environment overrides, then secrets.

Where the file is found: ``-c PATH``, else ``$GUARDD_CONFIG``, else ``./guardd.toml``, else
``/etc/guardd/guardd.toml``; with none, built-in defaults (said once on stderr by the CLI). The TOML is parsed
with ``parse_float=Decimal`` so money never passes through binary floating point. Precedence, strongest first:
``GUARDD_SECTION__KEY`` variables, the ``OPENROUTER_*`` variables, files in ``$CREDENTIALS_DIRECTORY``, the file.

Every problem is collected and raised at once as :class:`guardd.errors.ConfigError`, each line naming the file
and the key's path (``guardd.toml: budgets[1].daily: must be greater than 0``; list indexes count from 0).
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from guardd.core.budgets import Budget, RollingLimit
from guardd.core.health import HealthRule
from guardd.core.money import Money, MoneyError, format_json, parse_money
from guardd.core.periods import format_duration, parse_duration, parse_weekday
from guardd.core.redact import redact_url, url_has_secret
from guardd.core.spike import Spike
from guardd.errors import ConfigError

SEARCH_PATHS = (Path("guardd.toml"), Path("/etc/guardd/guardd.toml"))
CREDENTIAL_FILES = {"openrouter_api_key": "api_key", "openrouter_management_key": "management_key"}
STORE_URL_CREDENTIAL = "store_url"  # $CREDENTIALS_DIRECTORY/store_url: [store] url (contract §9)
HTTP_TOKEN_FILE = "http_token"
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _money(value: Any) -> Money:
    try:
        return parse_money(value)
    except MoneyError as exc:
        raise ValueError(f'{exc} (give USD as a number or a decimal string such as "5.00")') from None


def _positive_money(value: Any) -> Money:
    amount = _money(value)
    if amount <= 0:
        raise ValueError("must be greater than 0")
    return amount


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, Decimal):
        value = float(value)
    return parse_duration(value)


def _positive_duration(value: Any) -> timedelta:
    delta = _duration(value)
    if delta <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return delta


PositiveMoney = Annotated[int, BeforeValidator(_positive_money), PlainSerializer(format_json, return_type=str)]
AnyMoney = Annotated[int, BeforeValidator(_money), PlainSerializer(format_json, return_type=str)]
Duration = Annotated[timedelta, BeforeValidator(_duration), PlainSerializer(format_duration, return_type=str)]
PositiveDuration = Annotated[
    timedelta, BeforeValidator(_positive_duration), PlainSerializer(format_duration, return_type=str)
]
Percent = Annotated[float, Field(gt=0, le=1000)]


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} may contain only letters, digits, '-' and '_'")
    return value


Name = Annotated[str, AfterValidator(_name)]
"""A budget's or a health rule's name: it becomes a scope, a metric label and a CLI argument."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GuarddSection(_Section):
    state_dir: Path | None = None
    timezone: str = "UTC"
    week_start: Literal["monday", "sunday"] = "monday"
    evaluate_every: PositiveDuration = timedelta(seconds=30)
    stale_after: PositiveDuration = timedelta(minutes=5)
    max_event_cost: PositiveMoney = 1000 * 10**12
    instance: str | None = None  # this host's name in a shared store (§9); None: the host name
    log_format: Literal["text", "json"] = "text"  # json: one JSON object a line, for journald and log shippers

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Europe/Berlin, America/New_York, UTC)") from None
        return value

    @field_validator("instance")
    @classmethod
    def _instance(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", value):
            raise ValueError(f"{value!r} must be 1-63 letters, digits, '.', '-' or '_' (a host name)")
        return value

    @field_validator("week_start", mode="before")
    @classmethod
    def _week_start(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def weekday(self) -> int:
        return parse_weekday(self.week_start)


class OpenRouterSection(_Section):
    api_key: SecretStr | None = None
    api_keys: list[SecretStr] = Field(default_factory=list)
    management_key: SecretStr | None = None
    base_url: str = "https://openrouter.ai/api/v1"
    poll_every: PositiveDuration = timedelta(seconds=60)
    timeout: PositiveDuration = timedelta(seconds=10)
    # Additions (documented in config.example.toml):
    low_balance: AnyMoney | None = None
    runway_warn: PositiveDuration | None = None
    reconcile_tolerance: PositiveMoney | None = 1 * 10**12
    refresh_prices_every: PositiveDuration = timedelta(days=1)
    price_from_generation: bool = False

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value.rstrip("/")

    def all_keys(self) -> list[str]:
        """Return every configured API key (``api_key`` first), without duplicates."""
        found = [self.api_key] if self.api_key else []
        found += self.api_keys
        out: list[str] = []
        for secret in found:
            value = secret.get_secret_value().strip()
            if value and value not in out:
                out.append(value)
        return out


class LedgerSection(_Section):
    path: str
    format: Literal["auto", "guardd", "openrouter", "record"] = "auto"
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class RollingSection(_Section):
    window: PositiveDuration
    limit: PositiveMoney


class SpikeSection(_Section):
    """``budgets[].spike`` (contract §11)."""

    window: PositiveDuration
    factor: Annotated[Decimal, Field(gt=0)]
    baseline: PositiveDuration
    min: AnyMoney = 0

    @field_validator("factor", mode="before")
    @classmethod
    def _exact(cls, value: Any) -> Any:
        return Decimal(str(value)) if isinstance(value, int | float) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _whole_windows(self) -> SpikeSection:
        if self.baseline < self.window or self.baseline % self.window:
            raise ValueError(
                f"baseline ({format_duration(self.baseline)}) must be a whole number of windows"
                f" ({format_duration(self.window)})"
            )
        return self

    def to_core(self) -> Spike:
        return Spike(self.window, self.factor, self.baseline, self.min)


class BudgetSection(_Section):
    name: Name
    match: dict[str, str] = Field(default_factory=dict)
    source: Literal["ledger", "openrouter", "max"] = "ledger"
    daily: PositiveMoney | None = None
    weekly: PositiveMoney | None = None
    monthly: PositiveMoney | None = None
    rolling: list[RollingSection] = Field(default_factory=list)
    warn_at: list[Percent] = Field(default_factory=lambda: [80.0])
    trip_at: Percent | Literal[False] = 100.0
    forecast: bool = True
    notify: list[str] | None = None
    on_stale: Literal["open", "closed"] = "open"
    spike: SpikeSection | None = None
    suggest: list[str] = Field(default_factory=list)

    @field_validator("warn_at", mode="before")
    @classmethod
    def _warn_list(cls, value: Any) -> Any:
        return [float(v) if isinstance(v, Decimal) else v for v in value] if isinstance(value, list) else value

    @field_validator("trip_at", mode="before")
    @classmethod
    def _trip(cls, value: Any) -> Any:
        if value is True:
            return 100.0
        return float(value) if isinstance(value, Decimal) else value

    @model_validator(mode="after")
    def _has_a_limit(self) -> BudgetSection:
        if self.daily is None and self.weekly is None and self.monthly is None and not self.rolling:
            raise ValueError("sets no limit: give at least one of daily, weekly, monthly or rolling")
        return self

    def to_core(self) -> Budget:
        return Budget(
            name=self.name,
            match=dict(self.match),
            source=self.source,
            daily=self.daily,
            weekly=self.weekly,
            monthly=self.monthly,
            rolling=tuple(RollingLimit(r.window, r.limit) for r in self.rolling),
            warn_at=tuple(sorted(set(self.warn_at))),
            trip_at=None if self.trip_at is False else float(self.trip_at),
            forecast=self.forecast,
            notify=tuple(self.notify) if self.notify is not None else None,
            on_stale=self.on_stale,
            spike=self.spike.to_core() if self.spike is not None else None,
            suggest=tuple(self.suggest),
        )


class HealthSection(_Section):
    """``[[health]]`` (contract §11): alerts on how requests go. At least one condition is required."""

    name: Name
    match: dict[str, str] = Field(default_factory=dict)
    window: PositiveDuration = timedelta(minutes=10)
    min_requests: Annotated[int, Field(ge=1)] = 10
    error_rate: Annotated[float, Field(ge=0, le=100)] | None = None
    latency_p95: PositiveDuration | None = None
    rate_limited: Annotated[int, Field(ge=0)] | None = None
    notify: list[str] | None = None

    @field_validator("error_rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        return float(value) if isinstance(value, Decimal) else value

    @model_validator(mode="after")
    def _has_a_condition(self) -> HealthSection:
        if self.error_rate is None and self.latency_p95 is None and self.rate_limited is None:
            raise ValueError("sets no condition: give at least one of error_rate, latency_p95 or rate_limited")
        return self

    def to_core(self) -> HealthRule:
        return HealthRule(
            name=self.name,
            window=self.window,
            match=dict(self.match),
            min_requests=self.min_requests,
            error_rate=self.error_rate,
            latency_p95=self.latency_p95,
            rate_limited=self.rate_limited,
            notify=tuple(self.notify) if self.notify is not None else None,
        )


class NotifierSection(_Section):
    url: SecretStr
    tags: list[str] = Field(default_factory=list)
    min_severity: Literal["info", "warning", "critical"] = "warning"

    @field_validator("url", mode="before")
    @classmethod
    def _expand(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not isinstance(value, str):
            return value
        missing = [name for name in _ENV_REF.findall(value) if name not in os.environ]
        if missing:
            raise ValueError(f"refers to unset environment variable(s): {', '.join(missing)}")
        expanded = _ENV_REF.sub(lambda m: os.environ[m.group(1)], value)
        if not re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://\S+", expanded):
            raise ValueError(f"not an apprise URL ({redact_url(expanded)}); see https://github.com/caronc/apprise")
        return expanded

    @property
    def display_url(self) -> str:
        return redact_url(self.url.get_secret_value())


class AlertsSection(_Section):
    repeat_every: Duration = timedelta(hours=4)
    retry_after: PositiveDuration = timedelta(seconds=15)
    send_resolved: bool = True
    digest_at: str | None = None

    @field_validator("digest_at")
    @classmethod
    def _hhmm(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"must be a local time HH:MM, not {value!r}")
        return value


class KillswitchSection(_Section):
    path: Path = Path("killswitch.json")
    release: Literal["auto", "manual"] = "auto"
    disable_openrouter_keys: bool = False
    group: str | None = None
    """The group that owns the switch file, so that its members (client programs) read it; guardd must be in it."""
    mode: str | None = None
    """The switch file's permission bits as octal text (``"0640"``), whatever the umask; absent: 0644 less the
    umask."""

    @field_validator("mode")
    @classmethod
    def _octal(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"0?[0-7]{3}", value):
            raise ValueError(f'must be octal permission bits such as "0640", not {value!r}')
        bits = int(value, 8)
        if bits & 0o600 != 0o600 or bits & 0o133:
            raise ValueError(f"{value}: the owner must read and write it; nobody may execute it or write it but guardd")
        return value

    @property
    def mode_bits(self) -> int | None:
        return None if self.mode is None else int(self.mode, 8)


class StoreSection(_Section):
    """``[store]`` (contract §9): absent or without ``url``, the state is SQLite in ``state_dir``."""

    url: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _postgresql(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.match(r"^postgres(ql)?://", value.get_secret_value()):
            raise ValueError("must be a postgresql:// URL (the shared store is PostgreSQL)")
        return value


class HttpSection(_Section):
    """``[http]`` (contract §8): where the HTTP service listens and the bearer token every POST needs."""

    listen: str = "127.0.0.1:9787"
    token: SecretStr | None = None

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @property
    def address(self) -> tuple[str, int] | str:
        """``(host, port)`` for TCP, or the socket path (a str) for ``unix:/path``."""
        return parse_listen(self.listen)

    def token_value(self) -> str | None:
        """The configured token, or None (then every POST is refused with 403). Blank counts as none."""
        value = self.token.get_secret_value().strip() if self.token else ""
        return value or None


def parse_listen(value: str) -> tuple[str, int] | str:
    """Return ``(host, port)`` for ``host:port`` / ``[v6]:port``, or the path for ``unix:/path``.

    Raise ValueError for anything else.
    """
    if value.startswith("unix:"):
        path = value.removeprefix("unix:")
        if not path.startswith("/"):
            raise ValueError(f"a unix socket needs an absolute path (unix:/run/guardd/http.sock), not {value!r}")
        return path
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^\s:\[\]]+):(\d{1,5})", value)
    if match is None:
        raise ValueError(f"must be host:port (127.0.0.1:9787) or unix:/path, not {value!r}")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range 1-65535")
    return host, port


class Settings(BaseSettings):
    """The whole configuration. Build it with :func:`load_config`, not directly."""

    model_config = SettingsConfigDict(
        env_prefix="GUARDD_", env_nested_delimiter="__", extra="forbid", frozen=True, case_sensitive=False
    )

    guardd: GuarddSection = Field(default_factory=GuarddSection)
    openrouter: OpenRouterSection | None = None
    ledgers: list[LedgerSection] = Field(default_factory=list)
    budgets: list[BudgetSection] = Field(default_factory=list)
    health: list[HealthSection] = Field(default_factory=list)
    notifiers: list[NotifierSection] = Field(default_factory=list)
    alerts: AlertsSection = Field(default_factory=AlertsSection)
    killswitch: KillswitchSection = Field(default_factory=KillswitchSection)
    store: StoreSection = Field(default_factory=StoreSection)
    http: HttpSection | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML arrives as init kwargs; the environment must win over it, so it comes first.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _sources_need_openrouter(self) -> Settings:
        problem = _openrouter_missing([b.name for b in self.budgets if b.source != "ledger"], self.openrouter)
        if problem:
            raise ValueError(problem)
        return self


def _openrouter_missing(needs: list[str], section: object) -> str | None:
    """The problem of budgets whose source needs ``[openrouter]`` when it is absent, else None."""
    if needs and section is None:
        return f"budget(s) {', '.join(needs)} use source openrouter/max but [openrouter] is absent"
    return None


class Config:
    """The loaded configuration plus where it came from, with every relative path resolved."""

    def __init__(self, settings: Settings, path: Path | None) -> None:
        self.settings = settings
        self.path = path
        base = path.parent.resolve() if path else Path.cwd()
        state = settings.guardd.state_dir
        if state is None:
            env_state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
            state = Path(env_state) if env_state else Path(".guardd")
        self.state_dir = (base / state).resolve() if not state.is_absolute() else state
        switch = settings.killswitch.path
        self.killswitch_path = switch if switch.is_absolute() else self.state_dir / switch
        self.ledger_paths = [
            str(Path(lg.path) if Path(lg.path).is_absolute() else (base / lg.path)) for lg in settings.ledgers
        ]
        self.budgets = [b.to_core() for b in settings.budgets]
        self.health = [h.to_core() for h in settings.health]

    @property
    def instance(self) -> str:
        """This host's name in a shared store (contract §9): ``[guardd] instance``, else the host name."""
        return self.settings.guardd.instance or socket.gethostname()

    @property
    def db_path(self) -> Path:
        return self.state_dir / "guardd.db"

    @property
    def zone(self) -> ZoneInfo:
        return self.settings.guardd.zone

    def secrets_in_file(self) -> bool:
        """Return True when the configuration file itself carries a secret (a key or a notifier credential)."""
        if self.path is None:
            return False
        try:
            raw = _read_toml(self.path)
        except ConfigError:
            return False
        section = raw.get("openrouter")
        if isinstance(section, dict) and any(section.get(k) for k in ("api_key", "api_keys", "management_key")):
            return True
        http = raw.get("http")
        if isinstance(http, dict) and http.get("token"):
            return True
        notifiers = raw.get("notifiers")
        if not isinstance(notifiers, list):
            return False
        return any(
            isinstance(n, dict) and "${" not in str(n.get("url", "")) and url_has_secret(str(n.get("url", "")))
            for n in notifiers
        )

    def hygiene_warnings(self) -> list[str]:
        """Return warnings about how the configuration file is kept (secrets readable by other users), and about a
        heartbeat that would expire between evaluations."""
        warnings = []
        g = self.settings.guardd
        if g.evaluate_every >= g.stale_after:
            warnings.append(
                f"guardd.evaluate_every ({format_duration(g.evaluate_every)}) is not below guardd.stale_after "
                f"({format_duration(g.stale_after)}): the kill-switch file expires between evaluations, and clients "
                "and guardd check will see a dead guard; make evaluate_every shorter"
            )
        return warnings + self._secret_warnings()

    def _secret_warnings(self) -> list[str]:
        if self.path is None or not self.secrets_in_file():
            return []
        mode = self.path.stat().st_mode & 0o777
        if mode & 0o004:
            return [
                f"{self.path} contains secrets and is readable by every user (mode {mode:04o}); "
                f"fix with: chmod 0640 {self.path} (or move keys to systemd credentials)"
            ]
        return []

    def budget(self, name: str) -> Budget | None:
        return next((b for b in self.budgets if b.name == name), None)

    def effective(self) -> dict[str, Any]:
        """Return the effective configuration as plain data, secrets redacted, paths resolved."""
        data = self.settings.model_dump(mode="json")
        data["guardd"]["state_dir"] = str(self.state_dir)
        data["killswitch"]["path"] = str(self.killswitch_path)
        for ledger, resolved in zip(data["ledgers"], self.ledger_paths, strict=True):
            ledger["path"] = resolved
        for notifier, section in zip(data["notifiers"], self.settings.notifiers, strict=True):
            notifier["url"] = section.display_url
        if self.settings.openrouter is not None:
            orr = data["openrouter"]
            from guardd.core.redact import mask

            key = self.settings.openrouter.api_key
            orr["api_key"] = mask(key.get_secret_value()) if key else None
            orr["api_keys"] = [mask(k.get_secret_value()) for k in self.settings.openrouter.api_keys]
            mk = self.settings.openrouter.management_key
            orr["management_key"] = mask(mk.get_secret_value()) if mk else None
        if self.settings.store.url is not None:
            from guardd.core.redact import store_url

            data["store"]["url"] = store_url(self.settings.store.url.get_secret_value())
        if self.settings.http is not None:
            from guardd.core.redact import mask

            token = self.settings.http.token_value()
            data["http"]["token"] = mask(token) if token else None
        return data


def find_config(explicit: str | None) -> Path | None:
    """Return the config file to use (contract §1 search order) or None for built-in defaults.

    Raise ConfigError when an explicitly named file (``-c`` or ``$GUARDD_CONFIG``) does not exist.
    """
    named = explicit or os.environ.get("GUARDD_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError([f"{named}: no such configuration file"])
        return path
    for candidate in SEARCH_PATHS:
        if candidate.is_file():
            return candidate
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None


def _secrets_from_environment(data: dict[str, Any], env: dict[str, str]) -> None:
    """Fill [openrouter] secrets from OPENROUTER_* and $CREDENTIALS_DIRECTORY (only when the section exists),
    [store] url from the credential file ``store_url``, and the ``[http]`` token from the credential file
    ``http_token`` (only when [http] exists; ``GUARDD_HTTP__TOKEN`` still wins)."""
    creds_dir = env.get("CREDENTIALS_DIRECTORY")
    store_url = Path(creds_dir) / STORE_URL_CREDENTIAL if creds_dir else None
    if store_url is not None and store_url.is_file():
        store = data.setdefault("store", {})
        if isinstance(store, dict):
            store["url"] = store_url.read_text(encoding="utf-8").strip()
    http = data.get("http")
    creds = env.get("CREDENTIALS_DIRECTORY")
    if isinstance(http, dict) and creds and (Path(creds) / HTTP_TOKEN_FILE).is_file():
        http["token"] = (Path(creds) / HTTP_TOKEN_FILE).read_text(encoding="utf-8").strip()
    section = data.get("openrouter")
    if not isinstance(section, dict):
        return
    creds = env.get("CREDENTIALS_DIRECTORY")
    if creds:
        for filename, key in CREDENTIAL_FILES.items():
            file = Path(creds) / filename
            if file.is_file():
                section[key] = file.read_text(encoding="utf-8").strip()
    if env.get("OPENROUTER_API_KEY"):
        section["api_key"] = env["OPENROUTER_API_KEY"]
    if env.get("OPENROUTER_API_KEYS"):
        section["api_keys"] = [k.strip() for k in env["OPENROUTER_API_KEYS"].split(",") if k.strip()]
    management = env.get("OPENROUTER_MANAGEMENT_KEY") or env.get("OPENROUTER_PROVISIONING_KEY")
    if management:
        section["management_key"] = management
    if env.get("OPENROUTER_BASE_URL"):
        section["base_url"] = env["OPENROUTER_BASE_URL"]


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "literal[", "tagged-union")) or part in {"bool", "float", "int", "str"}:
            continue  # pydantic's union branch names are noise to a user
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _message(error: dict[str, Any]) -> str:
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown key (check the spelling; see config.example.toml)"
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "literal_error":
        return msg.replace("Input should be", "must be")
    return msg


def load_config(explicit: str | None = None, env: dict[str, str] | None = None) -> Config:
    """Return the configuration from the file found by :func:`find_config`, the environment and secrets.

    ``env`` (default ``os.environ``) is where ``OPENROUTER_*`` and ``$CREDENTIALS_DIRECTORY`` are read;
    ``GUARDD_…`` overrides always come from the process environment (pydantic-settings reads it).
    Raise ConfigError listing every problem with its file and key path.
    """
    env = dict(os.environ) if env is None else env
    path = find_config(explicit)
    data = _read_toml(path) if path else {}
    _secrets_from_environment(data, env)
    label = str(path) if path else "defaults"
    seen = _duplicate_names(data, label)
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        for error in exc.errors():
            line = f"{label}: {_loc(error['loc'])}: {_message(dict(error))}"
            if line not in seen:
                seen.append(line)
        # The checks across sections run on validated settings; when a field is bad, run them on the raw data
        # too, so one `config check` names every bad key at once (contract §1).
        seen += [line for line in _cross_checks_raw(data, label) if line not in seen]
        raise ConfigError(seen) from None
    validated = {
        section: [{"notify": getattr(item, "notify", None)} for item in getattr(settings, section, None) or []]
        for section in ("budgets", "health")
    }
    seen += _unknown_tags({tag for n in settings.notifiers for tag in n.tags}, validated, label)
    if seen:
        raise ConfigError(seen)
    return Config(settings, path)


def _cross_checks_raw(data: dict[str, Any], label: str) -> list[str]:
    """The cross-section checks on the raw (not validated) data, skipping whatever is too malformed to judge."""
    problems: list[str] = []
    notifiers = data.get("notifiers", [])
    if isinstance(notifiers, list) and all(isinstance(n, dict) for n in notifiers):
        tags = [n.get("tags", []) for n in notifiers]
        if all(isinstance(t, list) for t in tags):
            problems += _unknown_tags({str(tag) for t in tags for tag in t}, data, label)
    budgets = data.get("budgets")
    if isinstance(budgets, list) and not any(k.lower().startswith("guardd_openrouter") for k in os.environ):
        needs = [
            str(b.get("name"))
            for b in budgets
            if isinstance(b, dict) and b.get("source", "ledger") in ("openrouter", "max")
        ]
        problem = _openrouter_missing(needs, data.get("openrouter"))
        if problem:
            problems.append(f"{label}: {_loc(())}: {problem}")
    return problems


def _unknown_tags(carried: set[str], data: dict[str, Any], label: str) -> list[str]:
    """Report every ``notify`` tag that no notifier carries: such alerts would reach nobody (contract §1).

    ``carried`` is every notifier's tags; ``data`` the settings as plain data (raw or dumped)."""
    problems: list[str] = []
    for section in ("budgets", "health"):
        items = data.get(section)
        for index, item in enumerate(items if isinstance(items, list) else []):
            notify = item.get("notify") if isinstance(item, dict) else None
            for tag in notify if isinstance(notify, list) else []:
                if tag not in carried:
                    known = ", ".join(sorted(carried)) or "no notifier has tags"
                    where = f"{label}: {section}[{index}].notify"
                    problems.append(f"{where}: no notifier carries the tag {tag!r} ({known})")
    return problems


def _duplicate_names(data: dict[str, Any], label: str) -> list[str]:
    """Report repeated budget (and health rule) names from the raw data, so they show even when another key is
    also bad."""
    problems: list[str] = []
    for section in ("budgets", "health"):
        entries = data.get(section)
        if not isinstance(entries, list):
            continue
        first: dict[str, int] = {}
        for index, entry in enumerate(entries):
            name = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(name, str) and name in first:
                problems.append(
                    f"{label}: {section}[{index}].name: {name!r} is already the name of {section}[{first[name]}]"
                )
            elif isinstance(name, str):
                first[name] = index
    return problems
