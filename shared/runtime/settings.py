"""Settings from the environment (pydantic-settings), one model for every service.

Every variable is documented in the README's configuration table. Durations that the SLA rules
use are scaled by ``WANGGE_SLA_SCALE`` where they are applied, not here.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from pydantic import AliasChoices, AwareDatetime, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigurationError(ValueError):
    """A setting's value cannot be used. The message names the variable and says what is
    expected, never the value; ``shared.service.run`` logs it and exits 2 instead of starting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS")
    )
    kafka_security_protocol: str = Field(
        "PLAINTEXT", validation_alias=AliasChoices("KAFKA_SECURITY_PROTOCOL")
    )
    kafka_sasl_mechanism: str | None = Field(
        None, validation_alias=AliasChoices("KAFKA_SASL_MECHANISM")
    )
    kafka_sasl_username: str | None = Field(
        None, validation_alias=AliasChoices("KAFKA_SASL_USERNAME")
    )
    kafka_sasl_password: SecretStr | None = Field(
        None, validation_alias=AliasChoices("KAFKA_SASL_PASSWORD")
    )
    kafka_ssl_cafile: str | None = Field(None, validation_alias=AliasChoices("KAFKA_SSL_CAFILE"))
    kafka_ssl_certfile: str | None = Field(
        None, validation_alias=AliasChoices("KAFKA_SSL_CERTFILE")
    )
    kafka_ssl_keyfile: str | None = Field(None, validation_alias=AliasChoices("KAFKA_SSL_KEYFILE"))

    database_url: SecretStr = Field(
        SecretStr("postgresql://wangge@127.0.0.1:5432/wangge"),
        validation_alias=AliasChoices("DATABASE_URL"),
    )
    db_pool_max: int = Field(10, validation_alias=AliasChoices("WANGGE_DB_POOL_MAX"))

    topic_prefix: str = Field("", validation_alias=AliasChoices("WANGGE_TOPIC_PREFIX"))
    http_host: str = Field("127.0.0.1", validation_alias=AliasChoices("WANGGE_HTTP_HOST"))
    http_port: int = Field(8000, validation_alias=AliasChoices("WANGGE_HTTP_PORT"))
    log_level: str = Field("INFO", validation_alias=AliasChoices("WANGGE_LOG_LEVEL"))

    sla_scale: float = Field(1.0, gt=0, validation_alias=AliasChoices("WANGGE_SLA_SCALE"))
    # A demonstration's clock (shared.runtime.clock.DemoClock): the services' time is
    # WANGGE_DEMO_CLOCK_START at the wall-clock instant WANGGE_DEMO_CLOCK_ANCHOR (Unix seconds)
    # and runs WANGGE_DEMO_CLOCK_SPEED times as fast; unset, the real time (never in production)
    demo_clock_start: AwareDatetime | None = Field(
        None, validation_alias=AliasChoices("WANGGE_DEMO_CLOCK_START")
    )
    demo_clock_anchor: float | None = Field(
        None, validation_alias=AliasChoices("WANGGE_DEMO_CLOCK_ANCHOR")
    )
    demo_clock_speed: float = Field(
        1.0, gt=0, validation_alias=AliasChoices("WANGGE_DEMO_CLOCK_SPEED")
    )
    sweep_interval_s: float = Field(
        5.0, gt=0, validation_alias=AliasChoices("WANGGE_SWEEP_INTERVAL_S")
    )
    # the share of a stage's limit at which dispatch warns (黄牌); the rules file's ``warnings``
    # set it per tier and stage
    warn_fraction: float = Field(
        0.8, gt=0, lt=1, validation_alias=AliasChoices("WANGGE_WARN_FRACTION")
    )
    # a handler action's ``at`` further than this from when dispatch applied it is logged and
    # counted (the applied time decides either way)
    action_skew_max_s: float = Field(
        300.0, ge=0, validation_alias=AliasChoices("WANGGE_ACTION_SKEW_MAX_S")
    )
    feedback_window: timedelta = Field(
        timedelta(days=7), validation_alias=AliasChoices("WANGGE_FEEDBACK_WINDOW")
    )
    # a month's figures freeze this long after it closed (services/feedback/freezing.py)
    metrics_freeze_grace: timedelta = Field(
        timedelta(days=5), validation_alias=AliasChoices("WANGGE_METRICS_FREEZE_GRACE")
    )
    # how often feedback looks for a month due to be frozen
    freeze_sweep_interval_s: float = Field(
        60.0, gt=0, validation_alias=AliasChoices("WANGGE_FREEZE_SWEEP_INTERVAL_S")
    )
    merge_window: timedelta = Field(
        timedelta(hours=72), validation_alias=AliasChoices("WANGGE_MERGE_WINDOW")
    )
    # Duplicates across channels (services/intake/similarity.py): an open case of the same
    # category within this radius whose text is this alike is the same matter.
    nearby_radius_m: float = Field(
        150.0, gt=0, le=5000, validation_alias=AliasChoices("WANGGE_NEARBY_RADIUS_M")
    )
    nearby_similarity: float = Field(
        0.5, ge=0, le=1, validation_alias=AliasChoices("WANGGE_NEARBY_SIMILARITY")
    )
    # 未诉先办 hotspots (services/intake/hotspots.py): a burst of cases of one category in one
    # community over its own baseline opens a proactive task.
    hotspot_window: timedelta = Field(
        timedelta(hours=6), validation_alias=AliasChoices("WANGGE_HOTSPOT_WINDOW")
    )
    hotspot_baseline: timedelta = Field(
        timedelta(days=28), validation_alias=AliasChoices("WANGGE_HOTSPOT_BASELINE")
    )
    hotspot_min_reports: int = Field(
        5, ge=1, validation_alias=AliasChoices("WANGGE_HOTSPOT_MIN_REPORTS")
    )
    hotspot_p: float = Field(0.0001, gt=0, lt=1, validation_alias=AliasChoices("WANGGE_HOTSPOT_P"))
    # 人工分拨 (triage): a case classified with a lower confidence goes to the command centre's
    # queue instead of being dispatched on the guess. The default is the threshold measured for
    # the shipped classifier (char-lr-cnb-v5: 95 % of the reports dispatched at or above it are
    # right, bench/results/2026-12-02classify-v5.json); measure again after a retrain
    # (``python -m bench.classify``). 0: never on confidence (only flagged words).
    triage_min_confidence: float = Field(
        0.953, ge=0, le=1, validation_alias=AliasChoices("WANGGE_TRIAGE_MIN_CONFIDENCE")
    )
    # Personal data keys, read only by intake and ``wangge pii`` (``services.intake.privacy``
    # decodes and checks them there, not here: a bad key must not stop dispatch or feedback).
    pii_key: SecretStr | None = Field(None, validation_alias=AliasChoices("WANGGE_PII_KEY"))
    pii_old_keys: SecretStr | None = Field(
        None, validation_alias=AliasChoices("WANGGE_PII_OLD_KEYS")
    )
    pii_pseudonym_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("WANGGE_PII_PSEUDONYM_KEY")
    )
    taxonomy_file: str | None = Field(None, validation_alias=AliasChoices("WANGGE_TAXONOMY_FILE"))
    tier_rules_file: str | None = Field(
        None, validation_alias=AliasChoices("WANGGE_TIER_RULES_FILE")
    )
    consume_batch: int = Field(
        500, ge=1, le=10_000, validation_alias=AliasChoices("WANGGE_CONSUME_BATCH")
    )
    outbox_poll_s: float = Field(0.5, gt=0, validation_alias=AliasChoices("WANGGE_OUTBOX_POLL_S"))
    inbox_retention: timedelta = Field(
        timedelta(days=35), validation_alias=AliasChoices("WANGGE_INBOX_RETENTION")
    )
    retry_max_backoff_s: float = Field(
        30.0, gt=0, validation_alias=AliasChoices("WANGGE_RETRY_MAX_BACKOFF_S")
    )

    # Identity (shared.runtime.identity): JWT bearer tokens are verified with a shared secret
    # (HS256, development and small deployments), a public key (PEM) or an identity provider's
    # JWKS URL; with none of them set, every endpoint that needs a caller answers 401.
    auth_jwt_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("WANGGE_AUTH_JWT_SECRET")
    )
    auth_jwt_public_key: str | None = Field(
        None, validation_alias=AliasChoices("WANGGE_AUTH_JWT_PUBLIC_KEY")
    )
    auth_jwks_url: str | None = Field(None, validation_alias=AliasChoices("WANGGE_AUTH_JWKS_URL"))
    auth_issuer: str = Field("wangge", validation_alias=AliasChoices("WANGGE_AUTH_ISSUER"))
    auth_audience: str = Field("wangge", validation_alias=AliasChoices("WANGGE_AUTH_AUDIENCE"))
    auth_leeway_s: float = Field(30.0, ge=0, validation_alias=AliasChoices("WANGGE_AUTH_LEEWAY_S"))
    # The pages' sessions (shared.runtime.signin): a sign-in link is exchanged for a cookie
    # signed with this key (at least 32 bytes; every replica the same). Unset: derived from
    # WANGGE_AUTH_JWT_SECRET; with neither, pages cannot be signed in to.
    session_key: SecretStr | None = Field(None, validation_alias=AliasChoices("WANGGE_SESSION_KEY"))
    session_ttl_s: int = Field(
        8 * 3600, ge=60, le=7 * 86400, validation_alias=AliasChoices("WANGGE_SESSION_TTL_S")
    )
    # https deployments: the session cookie is Secure (sent over https only)
    session_cookie_secure: bool = Field(
        False, validation_alias=AliasChoices("WANGGE_SESSION_COOKIE_SECURE")
    )
    # The board's figures (docs/dispatch.md, "The figures"): where the board's browser reaches
    # feedback's staff API (dispatch serves the page; e.g. https://wangge.example.gov.cn/feedback
    # or http://127.0.0.1:8083), and the origins feedback lets a browser call it from with the
    # session cookie (comma-separated, e.g. the board's https://wangge.example.gov.cn).
    console_feedback_url: str | None = Field(
        None, validation_alias=AliasChoices("WANGGE_CONSOLE_FEEDBACK_URL")
    )
    cors_origins: str = Field("", validation_alias=AliasChoices("WANGGE_CORS_ORIGINS"))
    # Open311 GeoReport v2 on intake (services/intake/open311): the one jurisdiction_id served
    # (a request naming another is answered 404, as the specification says).
    open311_jurisdiction: str = Field(
        "wangge", min_length=1, validation_alias=AliasChoices("WANGGE_OPEN311_JURISDICTION")
    )
    # The address residents' links point to (rating pages, case status), e.g.
    # https://wangge.example.gov.cn/feedback; links are relative when unset.
    public_feedback_url: str | None = Field(
        None, validation_alias=AliasChoices("WANGGE_PUBLIC_FEEDBACK_URL")
    )
    # The residents' links (shared.contract.notify, shared.contract.links), read and checked by
    # feedback (services.feedback.keys), which refuses to start without them: the notify key
    # seals the rating links in feedback.requested for the notifier (feedback and the notifier
    # hold it), the link key makes the cases' status links (intake and feedback hold it).
    notify_key: SecretStr | None = Field(None, validation_alias=AliasChoices("WANGGE_NOTIFY_KEY"))
    link_key: SecretStr | None = Field(None, validation_alias=AliasChoices("WANGGE_LINK_KEY"))
    # Deprecated, for the transition: also publish feedback.requested v1, the token in clear.
    feedback_requested_v1: bool = Field(
        False, validation_alias=AliasChoices("WANGGE_FEEDBACK_REQUESTED_V1")
    )
    # Photos (shared.media; docs/integration.md, "Photos"): the largest upload taken, in bytes;
    # an S3-compatible object store for their bytes (set WANGGE_S3_BUCKET; PostgreSQL otherwise);
    # the key of the short-lived links by which dispatch lets a caller fetch a photo intake
    # stores (intake and dispatch hold it), how long such a link lives, and where callers reach
    # intake (those links start with it; relative when unset).
    media_max_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1024,
        le=100 * 1024 * 1024,
        validation_alias=AliasChoices("WANGGE_MEDIA_MAX_BYTES"),
    )
    s3_endpoint: str | None = Field(None, validation_alias=AliasChoices("WANGGE_S3_ENDPOINT"))
    s3_bucket: str | None = Field(None, validation_alias=AliasChoices("WANGGE_S3_BUCKET"))
    s3_region: str = Field("us-east-1", validation_alias=AliasChoices("WANGGE_S3_REGION"))
    s3_prefix: str = Field("", validation_alias=AliasChoices("WANGGE_S3_PREFIX"))
    s3_access_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("WANGGE_S3_ACCESS_KEY")
    )
    s3_secret_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("WANGGE_S3_SECRET_KEY")
    )
    media_link_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("WANGGE_MEDIA_LINK_KEY")
    )
    media_link_ttl_s: int = Field(
        300, ge=10, le=86400, validation_alias=AliasChoices("WANGGE_MEDIA_LINK_TTL_S")
    )
    public_intake_url: str | None = Field(
        None, validation_alias=AliasChoices("WANGGE_PUBLIC_INTAKE_URL")
    )

    def topic(self, name: str) -> str:
        """The physical topic name for a logical one (prefix for isolated environments)."""
        return f"{self.topic_prefix}{name}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
