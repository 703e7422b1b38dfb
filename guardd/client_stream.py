"""The copy-keeping stream :mod:`guardd.client` puts around a streamed completion, and how its end is recorded.

OpenRouter sends ``usage`` (with ``cost``) once, in the last chunk before ``[DONE]``, and the generation id in every
chunk from the first. A stream that ends with its usage is recorded from it. One that ends without it — the caller
closed it early (a user pressed Stop), dropped it unclosed (recorded when it is garbage-collected), or reading it
failed (the network cut it) — is still billed for the tokens generated before it ended, so it is recorded too: by
its generation id, model and provider from its first chunk, with no cost and no token counts (unknown). guardd
counts such a line as unpriced (contract §2), and prices it from ``/generation`` where
``openrouter.price_from_generation`` is on. Its label ``stream`` says why: ``stopped``, ``cut`` (with ``ok: false``
and the exception's class name in ``error``) or ``no_usage`` (it ended without a usage chunk). Each stream writes
exactly one line, whichever of end, close, error or collection comes first.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

STOPPED, CUT, NO_USAGE = "stopped", "cut", "no_usage"


def _chunks(data: bytes) -> Iterator[dict[str, Any]]:
    """The JSON objects of the complete ``data:`` lines of an SSE text, in order."""
    for raw in data.split(b"\n"):
        line = raw.strip()
        if not line.startswith(b"data:"):
            continue  # comments such as ": OPENROUTER PROCESSING" and blank lines
        payload = line[5:].strip()
        if payload == b"[DONE]":
            continue
        try:
            chunk = json.loads(payload, parse_float=Decimal)
        except ValueError:
            continue  # a cut last line, or not JSON
        if isinstance(chunk, dict):
            yield chunk


def usage_from_sse(data: bytes) -> dict[str, Any] | None:
    """Return the last SSE chunk that carries ``usage`` (OpenRouter sends it once, before ``[DONE]``)."""
    found = None
    for chunk in _chunks(data):
        if isinstance(chunk.get("usage"), dict):
            found = chunk
    return found


def first_from_sse(data: bytes) -> dict[str, Any]:
    """Return the first SSE chunk that names its generation (``id``), else ``{}``."""
    return next((c for c in _chunks(data) if isinstance(c.get("id"), str)), {})


def record_stream_end(tee: Any, ending: str, exc: BaseException | None = None) -> None:
    """Record the stream once: from its usage when it arrived, else as unfinished (``ending``: why)."""
    if tee.recorded:
        return
    tee.recorded = True
    data = bytes(tee.buffer)
    body = usage_from_sse(data)
    if body:
        tee.call.record(body, tee.status)
    else:
        tee.call.unfinished(first_from_sse(data), tee.status, ending, exc)


def _ending(exc: BaseException | None) -> str:
    return CUT if isinstance(exc, Exception) else STOPPED


_TEES: dict[type, type] = {}


def tee(response: Any, call: Any, async_: bool) -> Any:
    """Return a copy-keeping stream for ``response``, of the stream class its own library expects.

    httpx and httpx2 each assert that a response stream is *their* ``SyncByteStream``/``AsyncByteStream``, so the
    tee subclasses the one from the response's library. ``call`` has ``record(body, status)`` and
    ``unfinished(first_chunk, status, ending, exc)``.
    """
    library = importlib.import_module(type(response).__module__.split(".")[0])
    base = library.AsyncByteStream if async_ else library.SyncByteStream
    cls = _TEES.get(base)
    if cls is None:
        cls = _async_tee(base) if async_ else _sync_tee(base)
        _TEES[base] = cls
    return cls(response.stream, call, response.status_code)


class _TeeState:
    def __init__(self, stream: Any, call: Any, status: int) -> None:
        self.stream, self.call, self.status = stream, call, status
        self.buffer, self.recorded = bytearray(), False

    def __del__(self) -> None:
        # Dropped unclosed (and never read to its end): the caller stopped reading it.
        if not getattr(self, "recorded", True):
            try:
                record_stream_end(self, STOPPED)
            except Exception:  # at collection (maybe at exit) there is no one to tell
                pass


def _sync_tee(base: type) -> type:
    class Tee(_TeeState, base):  # type: ignore[misc]
        def __iter__(self) -> Iterator[bytes]:
            failure: BaseException | None = None
            try:
                for chunk in self.stream:
                    self.buffer += chunk
                    yield chunk
            except BaseException as exc:  # GeneratorExit: closed early; an Exception: reading failed
                failure = exc
                raise
            finally:
                record_stream_end(self, NO_USAGE if failure is None else _ending(failure), failure)

        def close(self) -> None:
            record_stream_end(self, STOPPED)
            self.stream.close()

    return Tee


def _async_tee(base: type) -> type:
    class AsyncTee(_TeeState, base):  # type: ignore[misc]
        async def __aiter__(self) -> AsyncIterator[bytes]:
            failure: BaseException | None = None
            try:
                async for chunk in self.stream:
                    self.buffer += chunk
                    yield chunk
            except BaseException as exc:  # GeneratorExit or CancelledError: stopped; an Exception: cut
                failure = exc
                raise
            finally:
                record_stream_end(self, NO_USAGE if failure is None else _ending(failure), failure)

        async def aclose(self) -> None:
            record_stream_end(self, STOPPED)
            await self.stream.aclose()

    return AsyncTee
