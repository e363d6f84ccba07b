"""Settings: the one place configuration comes from (environment, then `.env`, then defaults).

Built once at the edge (CLI command or app factory) and passed down; no other module reads
`os.environ`. Secrets are `SecretStr` so they print as `**********` in logs, `/debug` and reprs.
Environment names are given by each field's `validation_alias`; the field name works too, so
code and tests can write `Settings(data_dir=...)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .redact import mask_url


def _env(*names: str) -> Any:
    return AliasChoices(*names)


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "chronicon"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    # ---- storage -------------------------------------------------------------------------------
    data_dir: Path = Field(default_factory=default_data_dir,
                           validation_alias=_env("CHRONICON_DATA_DIR", "data_dir"))
    results_dir_override: Path | None = Field(
        default=None, validation_alias=_env("CHRONICON_RESULTS_DIR", "results_dir"))
    # Where frame indexes are kept so a new process does not read a seen video again
    # (video/index_cache.py): a directory, or "off"; unset = <data dir>/cache/index.
    index_cache: str | None = Field(
        default=None, validation_alias=_env("CHRONICON_INDEX_CACHE", "index_cache"))

    # ---- model ---------------------------------------------------------------------------------
    model: str = Field(default="256m", validation_alias=_env("CHRONICON_MODEL", "model"))
    device: str = Field(default="auto", validation_alias=_env("CHRONICON_DEVICE", "device"))
    quantization: Literal["auto", "4bit", "8bit", "none"] = Field(
        default="auto", validation_alias=_env("CHRONICON_QUANTIZATION", "quantization"))
    compile: bool = Field(default=False, validation_alias=_env("CHRONICON_COMPILE", "compile"))
    # Hugging Face's own offline switches: with either set, models come only from the local cache.
    hub_offline: bool = Field(default=False, validation_alias=_env(
        "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "hub_offline"))
    # A name in chronicon.vlm.registry.BACKENDS (transformers, openvino, remote; `local` is an
    # alias of transformers), stored as the registry key.
    backend: str = Field(
        default="transformers", validation_alias=_env("CHRONICON_BACKEND", "backend"))
    max_batch: int = Field(default=4, ge=1, le=32,
                           validation_alias=_env("CHRONICON_MAX_BATCH", "max_batch"))
    # Threads for the model's CPU work (None: the runtime's default, one per core). On a CPU
    # shared with other busy processes, fewer threads keep barriers from stalling.
    threads: int | None = Field(default=None, ge=1, le=256,
                                validation_alias=_env("CHRONICON_THREADS", "threads"))
    remote_url: str | None = Field(default=None,
                                   validation_alias=_env("CHRONICON_REMOTE_URL", "remote_url"))
    remote_api_key: SecretStr | None = Field(
        default=None, validation_alias=_env("CHRONICON_REMOTE_API_KEY", "remote_api_key"))
    remote_timeout: float = Field(
        default=120.0, gt=0, validation_alias=_env("CHRONICON_REMOTE_TIMEOUT", "remote_timeout"))

    # ---- server --------------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", validation_alias=_env("CHRONICON_HOST", "host"))
    port: int = Field(default=5000, ge=1, le=65535,
                      validation_alias=_env("CHRONICON_PORT", "port"))
    api_token: SecretStr | None = Field(
        default=None, validation_alias=_env("CHRONICON_API_TOKEN", "api_token"))
    max_upload_mb: float = Field(default=50, gt=0,
                                 validation_alias=_env("MAX_UPLOAD_MB", "max_upload_mb"))
    # A decoded frame larger than this is refused before decoding (a 16000x16000 GIF would
    # take gigabytes); 64 MP passes 8K (33 MP) and most panoramas.
    max_pixels: int = Field(default=64_000_000, ge=1,
                            validation_alias=_env("CHRONICON_MAX_PIXELS", "max_pixels"))
    # Host names (besides IP addresses, localhost and CHRONICON_HOST) the server answers to:
    # a name not listed is refused, so a DNS-rebinding page cannot reach a loopback server.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("CHRONICON_ALLOWED_HOSTS", "allowed_hosts"))
    # Models a web request may choose (comma-separated); the configured `model` always is one.
    # Empty: only the configured model, so no visitor can make the server unload the warm model
    # or download another one.
    models: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("CHRONICON_MODELS", "models"))
    # A slow or stalled upload must not hold a connection and an open file for ever.
    upload_timeout_s: float = Field(
        default=600.0, gt=0, validation_alias=_env("CHRONICON_UPLOAD_TIMEOUT", "upload_timeout_s"))
    upload_idle_timeout_s: float = Field(
        default=30.0, gt=0,
        validation_alias=_env("CHRONICON_UPLOAD_IDLE_TIMEOUT", "upload_idle_timeout_s"))
    agent_enabled: bool = Field(default=True,
                                validation_alias=_env("CHRONICON_AGENT", "agent_enabled"))
    log_level: str = Field(default="INFO",
                           validation_alias=_env("CHRONICON_LOG_LEVEL", "log_level"))

    # ---- sources: watched folders and live streams -------------------------------------------
    watch: str | None = Field(default=None, validation_alias=_env("CHRONICON_WATCH", "watch"))
    watch_settle_s: float = Field(
        default=2.0, ge=0, validation_alias=_env("CHRONICON_WATCH_SETTLE", "watch_settle_s"))
    stream_window_s: float = Field(
        default=10.0, gt=0, validation_alias=_env("CHRONICON_STREAM_WINDOW", "stream_window_s"))
    stream_motion_threshold: float = Field(
        default=0.01, ge=0, le=1,
        validation_alias=_env("CHRONICON_MOTION_THRESHOLD", "stream_motion_threshold"))
    stream_queue: int = Field(default=4, ge=1, le=1000,
                              validation_alias=_env("CHRONICON_STREAM_QUEUE", "stream_queue"))
    stream_timeout_s: float = Field(
        default=10.0, gt=0, validation_alias=_env("CHRONICON_STREAM_TIMEOUT", "stream_timeout_s"))
    stream_backoff_max_s: float = Field(
        default=60.0, gt=0,
        validation_alias=_env("CHRONICON_STREAM_BACKOFF_MAX", "stream_backoff_max_s"))

    # ---- queue and remote workers (see README "Running on several machines") -----------------
    queue: str = Field(default="sqlite", validation_alias=_env("CHRONICON_QUEUE", "queue"))
    worker_token: SecretStr | None = Field(
        default=None, validation_alias=_env("CHRONICON_WORKER_TOKEN", "worker_token"))
    worker_timeout: float = Field(
        default=30.0, ge=2, validation_alias=_env("CHRONICON_WORKER_TIMEOUT", "worker_timeout"))
    server_url: str = Field(default="http://127.0.0.1:5000",
                            validation_alias=_env("CHRONICON_SERVER_URL", "server_url"))

    # ---- agent: rules and deliveries -----------------------------------------------------------
    rules_path: Path | None = Field(default=None,
                                    validation_alias=_env("CHRONICON_RULES", "rules_path"))
    delivery_max_attempts: int = Field(
        default=5, ge=1, le=100,
        validation_alias=_env("CHRONICON_DELIVERY_MAX_ATTEMPTS", "delivery_max_attempts"))
    delivery_backoff_s: float = Field(
        default=30.0, ge=0,
        validation_alias=_env("CHRONICON_DELIVERY_BACKOFF", "delivery_backoff_s"))

    # ---- email ---------------------------------------------------------------------------------
    smtp_host: str = Field(default="smtp.gmail.com",
                           validation_alias=_env("SMTP_HOST", "smtp_host"))
    smtp_port: int = Field(default=587, ge=1, le=65535,
                           validation_alias=_env("SMTP_PORT", "smtp_port"))
    smtp_user: str | None = Field(default=None, validation_alias=_env("SMTP_USER", "smtp_user"))
    smtp_password: SecretStr | None = Field(
        default=None, validation_alias=_env("SMTP_PASSWORD", "smtp_password"))
    smtp_to: str | None = Field(default=None, validation_alias=_env("SMTP_TO", "smtp_to"))
    smtp_from: str | None = Field(default=None, validation_alias=_env("SMTP_FROM", "smtp_from"))
    smtp_security: Literal["auto", "starttls", "ssl"] = Field(
        default="auto", validation_alias=_env("SMTP_SECURITY", "smtp_security"))
    smtp_fallback_port: int | None = Field(
        default=None, ge=1, le=65535,
        validation_alias=_env("SMTP_FALLBACK_PORT", "smtp_fallback_port"))
    smtp_ca_file: Path | None = Field(default=None,
                                      validation_alias=_env("SMTP_CA_FILE", "smtp_ca_file"))
    smtp_timeout: float = Field(default=20.0, gt=0,
                                validation_alias=_env("SMTP_TIMEOUT", "smtp_timeout"))

    # ---- webhook -------------------------------------------------------------------------------
    webhook_url: str | None = Field(default=None,
                                    validation_alias=_env("WEBHOOK_URL", "webhook_url"))
    webhook_secret: SecretStr | None = Field(
        default=None, validation_alias=_env("WEBHOOK_SECRET", "webhook_secret"))
    webhook_token: SecretStr | None = Field(
        default=None, validation_alias=_env("WEBHOOK_TOKEN", "webhook_token"))
    webhook_timeout: float = Field(default=10.0, gt=0,
                                   validation_alias=_env("WEBHOOK_TIMEOUT", "webhook_timeout"))

    @field_validator("backend", mode="after")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        from .errors import BadParameter
        from .vlm.registry import canonical_name

        try:
            return canonical_name(value)
        except BadParameter as exc:
            raise ValueError(exc.message) from None

    @field_validator("allowed_hosts", "models", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("queue", mode="after")
    @classmethod
    def _queue_kind(cls, value: str) -> str:
        value = value.strip()
        if value != "sqlite" and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be 'sqlite' or a Redis URL (redis://host:port/db)")
        return value

    @field_validator("data_dir", "results_dir_override", "rules_path", "smtp_ca_file",
                     mode="after")
    @classmethod
    def _expand_user(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    # ---- derived -------------------------------------------------------------------------------
    @property
    def watch_targets(self) -> list[str]:
        """`CHRONICON_WATCH`: folders and stream URLs, comma-separated."""
        return [t.strip() for t in (self.watch or "").split(",") if t.strip()]

    @property
    def results_dir(self) -> Path:
        return self.results_dir_override or self.data_dir / "results"

    @property
    def index_cache_dir(self) -> Path | None:
        """The frame-index cache directory (`CHRONICON_INDEX_CACHE`); None when it is off."""
        value = (self.index_cache or "").strip()
        if value.lower() in ("off", "none", "false", "0"):
            return None
        return Path(value).expanduser() if value else self.data_dir / "cache" / "index"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def frames_dir(self) -> Path:
        """Sampled frames kept with each analysis (`<frames dir>/<job or analysis id>/`)."""
        return self.data_dir / "frames"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "chronicon.db"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def queue_kind(self) -> str:
        """The registry key of the job queue: `sqlite` (embedded) or `redis`."""
        return "sqlite" if self.queue == "sqlite" else "redis"

    @property
    def smtp_recipients(self) -> list[str]:
        return [a.strip() for a in (self.smtp_to or "").split(",") if a.strip()]

    @property
    def email_configured(self) -> bool:
        """Email is an action only when we know where to send it and from which account."""
        return bool(self.smtp_host and self.smtp_recipients and self.smtp_user)

    @property
    def web_models(self) -> list[str]:
        """The models a web request may name: the configured one first, then CHRONICON_MODELS."""
        return list(dict.fromkeys([self.model, *self.models]))

    def display_path(self, path: str | Path | None) -> str | None:
        """A path as users may see it: relative to the data directory when inside it, else only
        its last component. Absolute server paths never leave the server (API, pages, errors)."""
        if path is None:
            return None
        path = Path(path)
        try:
            return path.resolve().relative_to(self.data_dir.resolve()).as_posix()
        except ValueError:
            return path.name

    def without_server_paths(self, text: str) -> str:
        """`text` (an error message) with the data directory's absolute path taken out, so the
        paths in it are relative to the data directory (`uploads/...`, `rules.yaml`)."""
        for root in {str(self.data_dir.resolve()), str(self.data_dir)}:
            text = text.replace(root + "/", "").replace(root, ".")
        return text

    def masked(self) -> dict[str, Any]:
        """Every setting as users may see it (/debug): secrets '***' (None when unset), URLs
        without their credentials (`mask_url`), paths relative to the data directory."""
        data = self.model_dump(mode="json")
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if info.annotation in (SecretStr, SecretStr | None):
                data[name] = "***" if value is not None else None
            elif isinstance(value, str) and "://" in value:
                data[name] = mask_url(value)
            elif isinstance(value, Path):
                data[name] = "." if name == "data_dir" else self.display_path(value)
        return data


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `.env`, with explicit overrides (None = not given).

    This is the edge every command (`serve` and `worker` included) builds its settings at, so
    it also points the process-wide frame-index cache at `index_cache_dir`.
    """
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    from .video import index_cache  # numpy only: no decoder loaded for commands without video

    index_cache.configure(settings.index_cache_dir)
    return settings
