"""ChirpStack v4's device API over gRPC (`chirpstack_api`): create (or update), set keys,
delete.

Calls carry the API token as `authorization: Bearer` metadata, are spaced to at most
`chirpstack_requests_per_second`, and transient failures (server down, overloaded,
timed out) are retried with exponential back-off before `ChirpStackUnavailable` is
raised; a refusal that concerns the device itself raises `ChirpStackRefused`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from chirpstack_api import api
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from core.settings import Settings

T = TypeVar("T")

_TRANSIENT = frozenset({
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED, grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
})  # fmt: skip
# the server works but will refuse every device: stop the run, like an outage
_GLOBAL = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})
CALL_TIMEOUT_S = 10.0


class ChirpStackUnavailable(Exception):
    """ChirpStack cannot be reached or refuses us altogether; try again later."""


class ChirpStackRefused(Exception):
    """ChirpStack refused this device (unknown profile, invalid field...)."""


def _code(exc: BaseException) -> grpc.StatusCode | None:
    return exc.code() if isinstance(exc, grpc.RpcError) else None  # type: ignore[no-any-return]


def _describe(exc: grpc.RpcError) -> str:
    return f"{exc.code().name}: {exc.details()}"  # type: ignore[attr-defined]


class ChirpStackClient:
    """A throttled, retrying client of ChirpStack's DeviceService."""

    def __init__(self, settings: Settings, *, retries: int = 3) -> None:
        target = settings.chirpstack_api_url
        self._channel = (
            grpc.secure_channel(target, grpc.ssl_channel_credentials())
            if settings.chirpstack_tls
            else grpc.insecure_channel(target)
        )
        self._stub = api.DeviceServiceStub(self._channel)
        token = settings.chirpstack_api_token
        self._metadata = [("authorization", f"Bearer {token.get_secret_value()}")] if token else []
        self._interval = 1.0 / settings.chirpstack_requests_per_second
        self._next_call = time.monotonic()
        self._lock = threading.Lock()
        self._retries = retries

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def _throttle(self) -> None:
        with self._lock:
            now = time.monotonic()
            wait = self._next_call - now
            self._next_call = max(now, self._next_call) + self._interval
        if wait > 0:
            time.sleep(wait)

    def _call(self, method: Callable[..., T], request: Any) -> T:
        def once() -> T:
            self._throttle()
            return method(request, metadata=self._metadata, timeout=CALL_TIMEOUT_S)

        retrying = Retrying(
            retry=retry_if_exception(lambda exc: _code(exc) in _TRANSIENT),
            wait=wait_exponential(multiplier=0.2, max=5),
            stop=stop_after_attempt(self._retries),
            reraise=True,
        )
        try:
            return retrying(once)
        except grpc.RpcError as exc:
            if exc.code() in _TRANSIENT or exc.code() in _GLOBAL:  # type: ignore[attr-defined]
                raise ChirpStackUnavailable(_describe(exc)) from None
            raise

    def create_or_update(
        self,
        *,
        dev_eui: str,
        name: str,
        application_id: str,
        device_profile_id: str,
        join_eui: str | None,
        tags: dict[str, str],
    ) -> None:
        """Create the device, or update it if ChirpStack already has it."""
        device = api.Device(
            dev_eui=dev_eui, name=name, application_id=application_id,
            device_profile_id=device_profile_id, join_eui=join_eui or "", tags=tags,
        )  # fmt: skip
        try:
            self._call(self._stub.Create, api.CreateDeviceRequest(device=device))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:  # type: ignore[attr-defined]
                raise ChirpStackRefused(_describe(exc)) from None
            self._refused_unless_ok(self._stub.Update, api.UpdateDeviceRequest(device=device))

    def set_keys(self, *, dev_eui: str, app_key: str) -> None:
        """Set the OTAA root key. LoRaWAN 1.0.x (every supported model): the AppKey goes
        in ChirpStack's `nwk_key` field."""
        keys = api.DeviceKeys(dev_eui=dev_eui, nwk_key=app_key)
        try:
            self._call(self._stub.CreateKeys, api.CreateDeviceKeysRequest(device_keys=keys))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:  # type: ignore[attr-defined]
                raise ChirpStackRefused(_describe(exc)) from None
            self._refused_unless_ok(
                self._stub.UpdateKeys, api.UpdateDeviceKeysRequest(device_keys=keys)
            )

    def delete(self, dev_eui: str) -> None:
        """Remove the device from ChirpStack (already absent is fine)."""
        try:
            self._call(self._stub.Delete, api.DeleteDeviceRequest(dev_eui=dev_eui))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                raise ChirpStackRefused(_describe(exc)) from None

    def _refused_unless_ok(self, method: Callable[..., Any], request: Any) -> None:
        try:
            self._call(method, request)
        except grpc.RpcError as exc:
            raise ChirpStackRefused(_describe(exc)) from None
