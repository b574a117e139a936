"""A stop flag for threads that wait on PostgreSQL notifications.

psycopg's `notifies(timeout=...)` returns only when a notification comes or the timeout
passes, so a thread waiting on it noticed a stop request up to a timeout late: every web
process took about two seconds to shut down. `StopSignal.notifies` waits on the
connection's socket and on a wake-up socket together; `set()` writes to the latter.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading

import psycopg


class StopSignal:
    """`threading.Event`'s set / is_set / wait, plus a wait for notifications that
    `set()` interrupts at once."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)

    def set(self) -> None:
        """Ask the waiting thread to stop; ends its current wait."""
        self._event.set()
        with contextlib.suppress(OSError):  # full: a wake-up is pending anyway
            self._wake_writer.send(b"\0")

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, less when stopped; whether it is stopped."""
        return self._event.wait(seconds)

    def notifies(self, conn: psycopg.Connection, timeout: float) -> list[psycopg.Notify]:
        """The notifications of `conn` (which has run LISTEN) that have come or come
        within `timeout` seconds; none when the timeout passes or the signal is set."""
        arrived = list(conn.notifies(timeout=0))  # those read along with earlier results
        if arrived or self._event.is_set():
            return arrived
        wake = self._wake_reader.fileno()
        ready, _, _ = select.select([conn.pgconn.socket, wake], [], [], timeout)
        if wake in ready:
            with contextlib.suppress(BlockingIOError):
                self._wake_reader.recv(64)
        if self._event.is_set():
            return []
        return list(conn.notifies(timeout=0)) if ready else []

    def close(self) -> None:
        """Release the wake-up sockets (after the waiting thread has ended)."""
        self._wake_reader.close()
        self._wake_writer.close()
