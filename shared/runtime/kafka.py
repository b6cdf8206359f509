"""Kafka plumbing: the FastStream broker factory and security settings from the environment.

The broker consumes (offsets committed only after effects are durable, see
``shared.runtime.consumer``); everything is published through ``shared.runtime.producer``
(idempotent, ``acks=all``).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from shared.runtime.record_bytes import tolerate_undecodable_header_names
from shared.runtime.settings import Settings


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if "SSL" not in settings.kafka_security_protocol.upper():
        return None
    ctx = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    if settings.kafka_ssl_certfile:
        ctx.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile)
    return ctx


def broker_security(settings: Settings) -> BaseSecurity | None:
    """SASL/SCRAM, SASL/PLAIN and TLS from ``KAFKA_*`` variables; None for plaintext."""
    ctx = _ssl_context(settings)
    mech = (settings.kafka_sasl_mechanism or "").upper()
    if mech:
        user = settings.kafka_sasl_username or ""
        pw = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
        cls = {
            "PLAIN": SASLPlaintext,
            "SCRAM-SHA-256": SASLScram256,
            "SCRAM-SHA-512": SASLScram512,
        }.get(mech)
        if cls is None:
            raise ValueError(f"unsupported KAFKA_SASL_MECHANISM {mech!r}")
        return cls(username=user, password=pw, ssl_context=ctx, use_ssl=ctx is not None)
    if ctx is not None:
        return BaseSecurity(ssl_context=ctx, use_ssl=True)
    return None


def client_security_kwargs(settings: Settings) -> dict[str, Any]:
    """The same security settings as keyword arguments for plain aiokafka clients."""
    kwargs: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol.upper()}
    ctx = _ssl_context(settings)
    if ctx is not None:
        kwargs["ssl_context"] = ctx
    if settings.kafka_sasl_mechanism:
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism.upper()
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = (
            settings.kafka_sasl_password.get_secret_value()
            if settings.kafka_sasl_password
            else None
        )
    return kwargs


def create_broker(settings: Settings, service: str) -> KafkaBroker:
    tolerate_undecodable_header_names()
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"wangge-{service}",
        security=broker_security(settings),
        graceful_timeout=30.0,
        logger=logging.getLogger(f"wangge.{service}.faststream"),
        log_level=logging.DEBUG,
    )


async def kafka_reachable(settings: Settings, timeout_ms: int = 5000) -> bool:
    """A metadata request succeeds (the health check of the broker)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        request_timeout_ms=timeout_ms,
        **client_security_kwargs(settings),
    )
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
