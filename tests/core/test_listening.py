"""StopSignal: a thread waiting for notifications gets them as they come, including those
read along with an earlier query's result, and stops at once when asked."""

from __future__ import annotations

import threading
import time

import psycopg

from core.listening import StopSignal

LONG_WAIT = 60.0  # far longer than any of these tests may take


def _listening(database_url: str) -> psycopg.Connection:
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute("LISTEN cs_test_channel")
    return conn


def test_a_notification_ends_the_wait_with_its_payload(database_url: str) -> None:
    signal = StopSignal()
    with (
        _listening(database_url) as listener,
        psycopg.connect(database_url, autocommit=True) as sender,
    ):
        threading.Timer(0.2, sender.execute, ["NOTIFY cs_test_channel, 'zone 7'"]).start()
        started = time.monotonic()
        notes = signal.notifies(listener, LONG_WAIT)
        assert [n.payload for n in notes] == ["zone 7"]
        assert time.monotonic() - started < LONG_WAIT / 2


def test_notifications_read_with_an_earlier_result_are_not_lost(database_url: str) -> None:
    signal = StopSignal()
    with (
        _listening(database_url) as listener,
        psycopg.connect(database_url, autocommit=True) as sender,
    ):
        sender.execute("NOTIFY cs_test_channel, 'first'")
        listener.execute("SELECT 1")  # its answer brings the notification along
        assert [n.payload for n in signal.notifies(listener, LONG_WAIT)] == ["first"]


def test_set_from_another_thread_ends_a_long_wait_at_once(database_url: str) -> None:
    signal = StopSignal()
    with _listening(database_url) as listener:
        threading.Timer(0.2, signal.set).start()
        started = time.monotonic()
        assert signal.notifies(listener, LONG_WAIT) == []
        assert time.monotonic() - started < LONG_WAIT / 2
        assert signal.is_set()
        assert signal.notifies(listener, LONG_WAIT) == []  # stopped: no wait at all
    signal.close()
