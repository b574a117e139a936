"""What each installed package plugs into the platform, declared in its `module.py`.

`INSTALLED` is the explicit list of packages; `core.app` and `core.cli` loop over it.
Entries are import strings (`package.module:attribute`) so that a CLI command does
not import the web stack, and the web app does not import the simulator.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INSTALLED: tuple[str, ...] = (
    "core",
    "devices",
    "ingest",
    "parking",
    "alerts",
    "catalog",
    "dashboard",
)


@dataclass(frozen=True)
class Job:
    """A scheduled task: `target(settings)` every `every_seconds`, and once at start."""

    name: str
    target: str
    every_seconds: int


@dataclass(frozen=True)
class Module:
    """A package's contract with core."""

    name: str
    depends_on: tuple[str, ...] = ()
    exports: tuple[str, ...] = ()
    routers: tuple[str, ...] = ()  # API routers, mounted under /api/v1
    pages: tuple[str, ...] = ()  # routers of web pages, mounted at the root
    mounts: tuple[str, ...] = ()  # `mount(app)` targets: sub-applications (Dash's WSGI app)
    lifespans: tuple[str, ...] = ()
    cli: tuple[str, ...] = ()
    jobs: tuple[Job, ...] = ()
    subscribers: tuple[str, ...] = ()  # `subscribe(bus, settings) -> unsubscribe` targets
    demo_seed: str | None = None
    demo_services: tuple[str, ...] = ()
    migrations: bool = False
    privacy: str | None = None  # a `core.privacy.Privacy`: its processings and subject data
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def migrations_dir(self) -> Path | None:
        """The folder of this package's SQL/Python migrations, if it has one."""
        if not self.migrations:
            return None
        package = importlib.import_module(self.name)
        return Path(package.__file__ or "").parent / "migrations"


def resolve(target: str) -> Any:
    """Import `package.module:attribute` and return the attribute."""
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def modules() -> Iterator[Module]:
    """The installed packages' modules, in dependency order."""
    for name in INSTALLED:
        yield importlib.import_module(f"{name}.module").MODULE


_attached: dict[tuple[int, str, str], tuple[int, Callable[[], None]]] = {}
_attached_lock = threading.Lock()


def attach_subscribers(bus: Any, settings: Any) -> Callable[[], None]:
    """Attach every package's subscribers to `bus` for `settings`' database; returns a detach.

    Counted: two pipelines of one process (MQTT and HTTP) share one subscription, and a
    subscription ends with the last pipeline that needed it.
    """
    keys = [
        (id(bus), target, str(settings.database_url))
        for module in modules()
        for target in module.subscribers
    ]
    with _attached_lock:
        for key in keys:
            count, detach = _attached.get(key, (0, None))  # type: ignore[arg-type]
            if detach is None:
                detach = resolve(key[1])(bus, settings)
            _attached[key] = (count + 1, detach)

    def detach_all() -> None:
        with _attached_lock:
            for key in keys:
                count, detach = _attached.pop(key)
                if count > 1:
                    _attached[key] = (count - 1, detach)
                else:
                    detach()

    return detach_all
