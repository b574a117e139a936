"""A real gRPC server implementing ChirpStack v4's DeviceService on a loopback port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from chirpstack_api import api
from google.protobuf import empty_pb2

from core.embedded import free_port


@dataclass
class DeviceStore:
    """What the server holds, across restarts; `fail_with` makes every call fail."""

    token: str
    devices: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, Any] = field(default_factory=dict)
    calls: int = 0
    fail_with: grpc.StatusCode | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class DeviceService(api.DeviceServiceServicer):
    """Create / Update / CreateKeys / UpdateKeys / Delete, with ChirpStack's error codes."""

    def __init__(self, store: DeviceStore) -> None:
        self.store = store

    def _check(self, context: grpc.ServicerContext) -> None:
        with self.store.lock:
            self.store.calls += 1
        if self.store.fail_with is not None:
            context.abort(self.store.fail_with, "failing on purpose")
        metadata = dict(context.invocation_metadata())
        if metadata.get("authorization") != f"Bearer {self.store.token}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")

    def Create(self, request, context):
        self._check(context)
        dev_eui = request.device.dev_eui
        if not request.device.device_profile_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "device_profile_id is required")
        with self.store.lock:
            if dev_eui in self.store.devices:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, "object already exists")
            self.store.devices[dev_eui] = request.device
        return empty_pb2.Empty()

    def Update(self, request, context):
        self._check(context)
        with self.store.lock:
            self.store.devices[request.device.dev_eui] = request.device
        return empty_pb2.Empty()

    def CreateKeys(self, request, context):
        self._check(context)
        dev_eui = request.device_keys.dev_eui
        with self.store.lock:
            if dev_eui not in self.store.devices:
                context.abort(grpc.StatusCode.NOT_FOUND, "object does not exist")
            if dev_eui in self.store.keys:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, "object already exists")
            self.store.keys[dev_eui] = request.device_keys
        return empty_pb2.Empty()

    def Delete(self, request, context):
        self._check(context)
        with self.store.lock:
            if self.store.devices.pop(request.dev_eui, None) is None:
                context.abort(grpc.StatusCode.NOT_FOUND, "object does not exist")
            self.store.keys.pop(request.dev_eui, None)
        return empty_pb2.Empty()

    def UpdateKeys(self, request, context):
        self._check(context)
        with self.store.lock:
            self.store.keys[request.device_keys.dev_eui] = request.device_keys
        return empty_pb2.Empty()


@contextmanager
def chirpstack_server(store: DeviceStore, port: int | None = None) -> Iterator[str]:
    """Serve `store` on 127.0.0.1; yields host:port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    api.add_DeviceServiceServicer_to_server(DeviceService(store), server)
    port = port or free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None).wait()
