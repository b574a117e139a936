"""A small typed in-process event bus: packages publish dataclasses, others subscribe.

Handlers run in the publisher's thread after its transaction committed; a failing
handler is logged and does not affect the publisher or the other handlers.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("civicsense.events")

E = TypeVar("E")


class EventBus:
    """Subscribers by event type."""

    def __init__(self) -> None:
        self._handlers: dict[type, list[Callable[[Any], None]]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> Callable[[], None]:
        """Call `handler(event)` for every published `event_type`; returns an unsubscribe."""
        with self._lock:
            self._handlers[event_type].append(handler)

        def unsubscribe() -> None:
            with self._lock:
                self._handlers[event_type].remove(handler)

        return unsubscribe

    def publish(self, event: object) -> None:
        """Deliver `event` to its subscribers."""
        with self._lock:
            handlers = list(self._handlers.get(type(event), ()))
        for handler in handlers:
            try:
                handler(event)
            except Exception:
                log.exception("subscriber %r failed on %s", handler, type(event).__name__)


bus = EventBus()
