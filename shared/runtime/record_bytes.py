"""What a Kafka record's key and headers may hold, and how a dead letter keeps them as they came.

Kafka headers are (name, bytes) pairs and any client can send any bytes. This project's contract
(docs/integration.md, "Headers"): header names are UTF-8 without NUL; the CloudEvents headers
(``ce_*``) and the trace headers are UTF-8 without NUL; a record has at most ``MAX_HEADERS``
headers of at most ``MAX_HEADER_BYTES`` in all, and a key of at most ``MAX_KEY_BYTES``. Other
headers may hold any bytes and are ignored. A record that breaks the contract is dead-lettered
with the reason (``header_problem``), never applied and never lost.

A dead letter carries the original key, value and headers byte for byte. PostgreSQL cannot hold
NUL or invalid UTF-8 in text or jsonb, so the outbox keeps them base64-encoded (``encode_raw`` /
``decode_raw``). The one thing no client here can publish is a header *name* that is not UTF-8
(Kafka's protocol declares names as UTF-8 strings; aiokafka encodes them so): such a header goes
to the dead-letter topic as ``dlq_header_name_b64:<its name in base64>`` with its value unchanged.

aiokafka's record parser fails on a header name that is not UTF-8, and the partition would stall
on that record forever; ``tolerate_undecodable_header_names`` makes the consumer read such a
batch again with names decoded as ``surrogateescape`` (lossless), so the record reaches the
pipeline and its dead-letter topic.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator, Sequence
from typing import Any

MAX_HEADERS = 100
MAX_HEADER_BYTES = 64 * 1024  # names and values of all headers
MAX_KEY_BYTES = 1024
CHECKED_PREFIXES = ("ce_", "traceparent", "tracestate")  # headers this project reads
NAME_MARKER = "dlq_header_name_b64:"

RawHeaders = Sequence[tuple[str, bytes | None]]


def header_problem(headers: RawHeaders, key: bytes | None) -> str | None:
    """Why a record's headers or key break the contract, or None when they do not."""
    if key is not None and len(key) > MAX_KEY_BYTES:
        return f"key of {len(key)} bytes (at most {MAX_KEY_BYTES})"
    if len(headers) > MAX_HEADERS:
        return f"{len(headers)} headers (at most {MAX_HEADERS})"
    total = 0
    for i, (name, value) in enumerate(headers):
        if not _clean_text(name):
            return f"header {i}: its name is not UTF-8 or contains NUL"
        if value is None:
            if name.startswith(CHECKED_PREFIXES):
                return f"header {name!r}: no value"
            total += len(name)
            continue
        total += len(name) + len(value)
        if name.startswith(CHECKED_PREFIXES) and not _clean_bytes(value):
            return f"header {name!r}: its value is not UTF-8 or contains NUL"
    if total > MAX_HEADER_BYTES:
        return f"headers of {total} bytes (at most {MAX_HEADER_BYTES})"
    return None


def clean_headers(headers: RawHeaders) -> list[tuple[str, bytes]]:
    """The headers as text-safe pairs for FastStream's parser (which decodes every value as
    UTF-8): names and values that are not clean text become empty. Only for records with a
    ``header_problem`` or a value that is not UTF-8; the pipeline dead-letters the first kind."""
    return [
        (
            name if _clean_text(name) else "",
            value if isinstance(value, bytes) and _clean_bytes(value) else b"",
        )
        for name, value in headers
    ]


def needs_cleaning(headers: RawHeaders) -> bool:
    """Whether FastStream's parser would fail on these headers (a value missing or not UTF-8)
    or pass on a name that is not clean text."""
    return any(
        not isinstance(value, bytes) or not is_utf8(value) or not _clean_text(name)
        for name, value in headers
    )


def is_utf8(value: bytes) -> bool:
    if value.isascii():
        return True
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def text_safe(text: str) -> str:
    """``text`` as PostgreSQL text and JSON can hold it: NUL and lone surrogates escaped."""
    if "\x00" in text or not _encodable(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text


def encode_raw(key: bytes | None, headers: RawHeaders) -> dict[str, Any]:
    """The original key and headers, losslessly, for a jsonb column: base64 everywhere."""
    return {
        "key": _b64(key),
        "headers": [[_b64(_name_bytes(n)), _b64(v)] for n, v in headers],
    }


def decode_raw(raw: dict[str, Any]) -> tuple[bytes | None, list[tuple[str, bytes | None]]]:
    """``encode_raw`` undone, as the producer publishes it: names that are not UTF-8 marked."""
    headers: list[tuple[str, bytes | None]] = []
    for name_b64, value_b64 in raw["headers"]:
        name = base64.b64decode(name_b64)
        try:
            text = name.decode("utf-8")
        except UnicodeDecodeError:
            text = NAME_MARKER + name_b64
        headers.append((text, _unb64(value_b64)))
    return _unb64(raw["key"]), headers


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode("ascii") if data is not None else None


def _unb64(text: str | None) -> bytes | None:
    return base64.b64decode(text) if text is not None else None


def _name_bytes(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _clean_text(text: str) -> bool:
    if "\x00" in text:
        return False
    return text.isascii() or _encodable(text)


def _clean_bytes(value: bytes) -> bool:
    return b"\x00" not in value and is_utf8(value)


# --- aiokafka: read header names that are not UTF-8 instead of stalling on them ----------------


class _LenientBytes(bytearray):
    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytearray.decode(self, encoding, "surrogateescape")


class _LenientBuffer(bytearray):
    """A batch's buffer whose slices decode with ``surrogateescape`` (aiokafka decodes header
    names with ``buffer[a:b].decode("utf-8")``)."""

    def __getitem__(self, index: Any) -> Any:
        item = bytearray.__getitem__(self, index)
        return _LenientBytes(item) if isinstance(index, slice) else item


def _lenient_records(raw: bytes) -> list[Any]:
    from aiokafka.record.default_records import _DefaultRecordBatchPy

    class Lenient(_DefaultRecordBatchPy):
        def _maybe_uncompress(self) -> None:
            super()._maybe_uncompress()
            buffer: bytearray = self._buffer  # type: ignore[has-type]
            if not isinstance(buffer, _LenientBuffer):
                self._buffer = _LenientBuffer(buffer)

    return list(Lenient(raw))


class _TolerantBatch:
    """aiokafka's (compiled) batch; read again leniently if a header name is not UTF-8."""

    def __init__(self, batch: Any, raw: bytes) -> None:
        self._batch = batch
        self._raw = raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def __iter__(self) -> Iterator[Any]:
        try:
            records = list(self._batch)
        except UnicodeDecodeError:
            records = _lenient_records(self._raw)
        return iter(records)

    def __next__(self) -> Any:
        return next(self._batch)


class _TolerantMemoryRecords:
    """aiokafka's ``MemoryRecords`` (a fetched partition's batches), each batch tolerant."""

    _LOG_OVERHEAD = 12  # base offset (int64) and length (int32) before each batch

    def __init__(self, data: bytes) -> None:
        from aiokafka.record.memory_records import MemoryRecords

        self._records = MemoryRecords(data)
        self._data = data
        self._pos = 0

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def next_batch(self) -> Any:
        batch = self._records.next_batch()
        if batch is None:
            return None
        start = self._pos
        (length,) = struct.unpack_from(">i", self._data, start + 8)
        self._pos = start + self._LOG_OVERHEAD + length
        if getattr(batch, "magic", 2) < 2:
            return batch
        return _TolerantBatch(batch, bytes(self._data[start : self._pos]))


def tolerate_undecodable_header_names() -> None:
    """Make every aiokafka consumer of this process read records whose header names are not
    UTF-8 (idempotent)."""
    from aiokafka.consumer import fetcher

    fetcher.MemoryRecords = _TolerantMemoryRecords
