"""The town's LoRaWAN gateways and how they hear each device: rxInfo, txInfo and data rate."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from chirpstack_api import gw

from .fleet import SimDevice

REGION_CONFIG_ID = "eu868"
_CHANNELS_HZ = (868_100_000, 868_300_000, 868_500_000)
_TX_POWER_DBM = 14.0
_BURIED_LOSS_DB = {"parking": 16.0, "air": 8.0, "leak": 20.0}  # asphalt, walls, basements
_REQUIRED_SNR_DB = {7: -7.5, 8: -10.0, 9: -12.5, 10: -15.0, 11: -17.5, 12: -20.0}
_ADR_MARGIN_DB = 10.0  # ChirpStack's default installation margin
_METADATA = {"region_config_id": REGION_CONFIG_ID, "region_common_name": "EU868"}


@dataclass(frozen=True)
class Gateway:
    """A gateway on a rooftop of the town."""

    gateway_id: str
    lat: float
    lon: float
    altitude: float


GATEWAYS = (
    Gateway("24e124fffef1c0a1", 45.8993, 6.1290, 28.0),  # hôtel de ville
    Gateway("0016c001f153a14c", 45.9075, 6.1262, 41.0),  # château d'eau des Romains
    Gateway("7276ff002e0607d1", 45.8958, 6.1221, 36.0),  # lycée Berthollet
)


@dataclass(frozen=True)
class Link:
    """How a device is heard: the gateways from strongest, their mean RSSI, the ADR data rate."""

    hops: tuple[tuple[Gateway, float], ...]
    spreading_factor: int

    @property
    def data_rate(self) -> int:
        """EU868 data rate: DR0 is SF12, DR5 is SF7."""
        return 12 - self.spreading_factor


def link_for(device: SimDevice) -> Link:
    """The radio link of `device` to the town's gateways."""
    loss = _BURIED_LOSS_DB.get(device.kind, 10.0)
    hops = sorted(
        ((gateway, _mean_rssi(device, gateway, loss)) for gateway in GATEWAYS),
        key=lambda hop: -hop[1],
    )
    return Link(tuple(hops), _adr_spreading_factor(snr_for(hops[0][1])))


def _mean_rssi(device: SimDevice, gateway: Gateway, loss: float) -> float:
    north = (device.lat - gateway.lat) * 111_320
    east = (device.lon - gateway.lon) * 111_320 * math.cos(math.radians(gateway.lat))
    distance_km = max(math.hypot(north, east) / 1000, 0.05)
    return _TX_POWER_DBM - (128.0 + 33.0 * math.log10(distance_km)) - loss


def snr_for(rssi: float) -> float:
    """A plausible SNR for an RSSI near the noise floor of a town."""
    return max(-20.0, min(12.0, (rssi + 112.0) * 0.9))


def _adr_spreading_factor(snr: float) -> int:
    for spreading_factor, required in _REQUIRED_SNR_DB.items():
        if snr - required >= _ADR_MARGIN_DB:
            return spreading_factor
    return 12


def rx_info(
    link: Link, when: datetime, rng: random.Random, *, gateways: int, channel: int
) -> list[gw.UplinkRxInfo]:
    """What the `gateways` strongest gateways report of an uplink sent just before `when`."""
    return [_reception(gateway, rssi, when, rng, channel) for gateway, rssi in link.hops[:gateways]]


def _reception(
    gateway: Gateway, mean_rssi: float, when: datetime, rng: random.Random, channel: int
) -> gw.UplinkRxInfo:
    rssi = round(mean_rssi + rng.gauss(0, 2.5))
    info = gw.UplinkRxInfo(
        gateway_id=gateway.gateway_id,
        uplink_id=rng.getrandbits(32),
        rssi=rssi,
        snr=round(snr_for(rssi) + rng.gauss(0, 0.8), 1),
        channel=channel,
        context=rng.randbytes(4),
        crc_status=gw.CRC_OK,
        location={"latitude": gateway.lat, "longitude": gateway.lon, "altitude": gateway.altitude},
        metadata=_METADATA,
    )
    received = when - timedelta(milliseconds=rng.uniform(70, 95))
    info.gw_time.FromDatetime(received)
    info.ns_time.FromDatetime(received + timedelta(milliseconds=rng.uniform(30, 50)))
    return info


def tx_info(link: Link, channel: int) -> gw.UplinkTxInfo:
    """LoRa modulation of an uplink on one of the three default EU868 channels."""
    lora = gw.LoraModulationInfo(
        bandwidth=125_000, spreading_factor=link.spreading_factor, code_rate=gw.CR_4_5
    )
    return gw.UplinkTxInfo(frequency=_CHANNELS_HZ[channel], modulation=gw.Modulation(lora=lora))


def random_channel(rng: random.Random) -> int:
    """Index of the default EU868 channel an uplink goes out on."""
    return rng.randrange(len(_CHANNELS_HZ))
