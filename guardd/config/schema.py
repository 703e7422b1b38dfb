"""The configuration's schema (contract §1): every section and key, its type, default and checks — the one
definition of what a configuration means. Validated by :func:`guardd.config.load.load_config`; precedence,
strongest first: ``GUARDD_SECTION__KEY`` variables, the ``OPENROUTER_*`` variables, files in
``$CREDENTIALS_DIRECTORY``, the file (:mod:`guardd.config.sources`).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from guardd.config.fields import AnyMoney, Duration, Name, NotifyTags, Percent, PositiveDuration, PositiveMoney
from guardd.config.problems import openrouter_missing
from guardd.config.sources import ENV_REF
from guardd.config.view import parse_listen
from guardd.core.budgets import Budget, RollingLimit
from guardd.core.health import HealthRule
from guardd.core.periods import format_duration, parse_weekday
from guardd.core.redact import redact_url
from guardd.core.spike import Spike


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
    # Parsing processes for a ledger backlog (the daemon's catch-up): None = one per core, for a backlog of 32 MiB
    # or more; a number given is used for any backlog longer than one 4 MiB range; 0 = parse in the daemon itself.
    ingest_workers: Annotated[int, Field(ge=0, le=64)] | None = None

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
    notify: NotifyTags | None = None
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
    notify: NotifyTags | None = None

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
        missing = [name for name in ENV_REF.findall(value) if name not in os.environ]
        if missing:
            raise ValueError(f"refers to unset environment variable(s): {', '.join(missing)}")
        expanded = ENV_REF.sub(lambda m: os.environ[m.group(1)], value)
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
        problem = openrouter_missing([b.name for b in self.budgets if b.source != "ledger"], self.openrouter)
        if problem:
            raise ValueError(problem)
        return self
