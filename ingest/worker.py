"""The ingest worker: MQTT source + pipeline, started and stopped together."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.events import bus
from core.settings import Settings

from .mqtt_source import MqttSource
from .pipeline import Pipeline

log = logging.getLogger("civicsense.ingest")


@dataclass
class Worker:
    """A running bridge from the broker to the database."""

    pipeline: Pipeline
    source: MqttSource

    def stop(self) -> None:
        """Flush and acknowledge what is queued, then disconnect.

        Messages arriving meanwhile stay unacknowledged: the broker keeps them.
        """
        self.pipeline.stop()
        self.source.stop()


def start_worker(
    settings: Settings, *, client_id: str | None = None, keep_latencies: bool = False
) -> Worker:
    """Start the pipeline thread and the MQTT network thread."""
    pipeline = Pipeline.from_settings(settings, bus, keep_latencies=keep_latencies)
    pipeline.start()
    source = MqttSource(
        settings.mqtt_url,
        pipeline,
        topic=settings.mqtt_topic,
        client_id=client_id or settings.mqtt_client_id or None,
        shared_group=settings.mqtt_shared_group or None,
        receive_maximum=settings.mqtt_receive_maximum,
        session_expiry=settings.mqtt_session_expiry,
    )
    source.start()
    return Worker(pipeline, source)
