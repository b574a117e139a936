"""ChirpStack v4 uplink events (the integration's protobuf, as JSON) for chosen readings."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Mapping
from datetime import datetime

from chirpstack_api import integration
from google.protobuf import json_format

from devices import codecs
from ingest.batch import Inbound, from_topic

_f_cnt = itertools.count(1)


def uplink(dev_eui: str, model: str, readings: Mapping[str, float], at: datetime) -> Inbound:
    """An `up` event of `dev_eui` carrying `readings`, received by a gateway at `at`."""
    fport, data = codecs.encode(model, readings)
    event = integration.UplinkEvent(
        deduplication_id=str(uuid.uuid4()),
        device_info=integration.DeviceInfo(
            tenant_id="t", application_id="app", device_profile_name=model, dev_eui=dev_eui
        ),
        f_cnt=next(_f_cnt), f_port=fport, data=data,
    )  # fmt: skip
    event.time.FromDatetime(at)
    topic = f"application/app/device/{dev_eui}/event/up"
    return from_topic(topic, json.dumps(json_format.MessageToDict(event)).encode())
