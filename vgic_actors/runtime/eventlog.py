"""Event emission: structlog with a msgspec JSON-lines renderer, plus in-process sinks.

`configure_event_log` is the only caller of ``structlog.configure`` in the package.
The chain has no wall-clock `TimeStamper`: events carry their own step and virtual
time. The renderer encodes an event Struct with one reused msgspec Encoder, so a log
line is exactly ``encode_event(ev)`` and reads back with ``events.decode_event``.
Other structlog calls go through ``JSONRenderer`` with a msgspec adapter (it always
passes ``default=``, which ``msgspec.json.encode`` does not take).

Logging off costs one attribute test per would-be event: model code guards with
``if emitter.on:`` and builds no Struct at all.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, BinaryIO

import msgspec
import structlog

from vgic_actors.events import ENCODER, AnyEvent, Event

EventSink = Callable[[AnyEvent], None]

_FALLBACK_ENCODER = msgspec.json.Encoder(enc_hook=repr)


def _msgspec_dumps(obj: Any, **_kw: Any) -> bytes:
    """``JSONRenderer`` serializer adapter: drop its ``default=``, encode with msgspec."""
    return _FALLBACK_ENCODER.encode(obj)


_JSON_RENDERER = structlog.processors.JSONRenderer(serializer=_msgspec_dumps)


def render_event_line(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Final processor: an event Struct under ``ev`` becomes its own JSON line (bytes)."""
    ev = event_dict.get("ev")
    if isinstance(ev, Event):
        return ENCODER.encode(ev)
    return _JSON_RENDERER(logger, method_name, event_dict)


def configure_event_log(stream: BinaryIO | None) -> None:
    """Send events to `stream` as JSON lines, or (None) turn structlog output off.

    Loggers are not cached (tests reconfigure; cached loggers do not pickle).
    """
    if stream is None:
        structlog.configure(
            processors=[render_event_line],
            wrapper_class=structlog.make_filtering_bound_logger(50),
            cache_logger_on_first_use=False,
        )
        return
    structlog.configure(
        processors=[render_event_line],
        wrapper_class=structlog.make_filtering_bound_logger(20),
        logger_factory=structlog.BytesLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )

class Emitter:
    """Where a run's events go: a structlog log stream, in-process sinks, a ring of recent.

    `on` is False when nobody listens; callers test it before building an event.
    `kernel_on` is True when someone listens to the kernel model's events only (a
    ``kernel_sinks`` entry such as the step monitor): the kernel layer tests it, so such
    a listener does not make the runtime build an event for every step.
    """

    __slots__ = ("_logger", "_sinks", "kernel_on", "on", "recent")

    def __init__(
        self, *, log: BinaryIO | None = None, sinks: Iterable[EventSink] = (), keep: int = 32,
        kernel_sinks: Iterable[EventSink] = (),
    ) -> None:
        kernel = tuple(kernel_sinks)
        self._sinks = tuple(sinks) + kernel
        self._logger: Any = None
        if log is not None:
            configure_event_log(log)
            self._logger = structlog.get_logger()
        self.on = len(self._sinks) > len(kernel) or self._logger is not None
        self.kernel_on = self.on or bool(kernel)
        self.recent: deque[AnyEvent] = deque(maxlen=keep)

    def emit(self, event: AnyEvent) -> None:
        """Hand `event` to every sink, the recent ring and the log stream."""
        self.recent.append(event)
        for sink in self._sinks:
            sink(event)
        if self._logger is not None:
            self._logger.info("ev", ev=event)

    def close(self) -> None:
        """Detach the log stream and put structlog back to its defaults."""
        if self._logger is not None:
            self._logger = None
            structlog.reset_defaults()
