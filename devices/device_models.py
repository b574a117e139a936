"""Device models as data: what each supported sensor is, for the registry, the silence job
and the solution catalogue (which imports this module).

What a model measures comes from its codec (`devices.codecs`), never repeated here. Vendor
facts are those of the vendors' product pages and datasheets as The Things Network's device
repository (`TheThingsNetwork/lorawan-devices`, `vendor/<vendor>/<model>.yaml` and its
profile files) records them; a fact it does not give and no vendor page confirmed is None,
and a comment says so. LoRaWAN facts are those of the EU868 variant, the one French towns use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from . import codecs
from .codecs import Quantity

_HOUR, _DAY = 3600, 86400


@dataclass(frozen=True, slots=True)
class Battery:
    """A model's battery as its vendor describes it."""

    kind: str | None
    replaceable: bool | None = None
    life_years: float | None = None  # as the vendor states it, under its conditions
    life_conditions: str | None = None


@dataclass(frozen=True, slots=True)
class LoRaWAN:
    """How a model speaks LoRaWAN (its EU868 variant)."""

    device_class: Literal["A", "B", "C"] | None
    mac_version: str | None
    regional_parameters: str | None
    band: str = "EU868"


@dataclass(frozen=True, slots=True)
class DeviceModel:
    """One supported model: vendor facts, LoRaWAN facts and the uplink interval we expect."""

    model_id: str
    name: str
    vendor_name: str
    uplink_interval_s: int  # expected at most this long between uplinks (silence detection)
    product_url: str
    lorawan: LoRaWAN | None = None
    battery: Battery | None = None
    ingress_protection: str | None = None
    datasheet_url: str | None = None
    generic: bool = False  # a payload format many devices use, not one product

    @property
    def vendor(self) -> str:
        """The vendor id of the codec registry (`milesight`, `elsys`...)."""
        return codecs.registry()[self.model_id].vendor

    @property
    def quantities(self) -> tuple[Quantity, ...]:
        """What the model reports, with units: its codec's list."""
        return codecs.registry()[self.model_id].quantities


# Milesight's and Elsys's EU868 profiles: LoRaWAN 1.0.3, neither class B nor class C.
_V103 = LoRaWAN("A", "1.0.3", "RP001-1.0.3-RevA")
_MILESIGHT = "Milesight"
_MILESIGHT_DOCS = "https://resource.milesight-iot.com/milesight/document/"
_ELSYS = "Elsys (ElektronikSystem i Umeå AB)"
_ELSYS_DOCS = "https://elsys.se/public/datasheets/"
# Neither Milesight nor Elsys states a battery life that fits these models as configured
# (it depends on the reporting interval): left None.
_ER14505 = Battery("ER14505 Li-SOCl2 (AA size)", replaceable=True)
_ELSYS_AA = Battery("AA", replaceable=True)  # the repository says "AA", chemistry not given

_MODELS = (
    DeviceModel(
        model_id="milesight-am103",
        name="Milesight AM103 indoor air quality sensor (3 in 1)",
        vendor_name=_MILESIGHT,
        uplink_interval_s=10 * 60,
        product_url="https://www.milesight-iot.com/lorawan/sensor/am103/",
        datasheet_url=_MILESIGHT_DOCS + "am100-series-datasheet-en.pdf",
        lorawan=_V103,
        battery=_ER14505,
        ingress_protection="IP30",
    ),
    DeviceModel(
        model_id="milesight-am307",
        name="Milesight AM307 indoor air quality sensor (7 in 1)",
        vendor_name=_MILESIGHT,
        uplink_interval_s=10 * 60,
        product_url="https://www.milesight-iot.com/lorawan/sensor/am300/",
        datasheet_url=_MILESIGHT_DOCS + "am300-series-datasheet-en.pdf",
        lorawan=_V103,
        battery=_ER14505,
        ingress_protection="IP30",
    ),
    DeviceModel(
        model_id="milesight-em300-sld",
        name="Milesight EM300-SLD spot leak detection sensor",
        vendor_name=_MILESIGHT,
        uplink_interval_s=10 * 60,
        product_url="https://www.milesight-iot.com/lorawan/sensor/em300-sldzld/",
        datasheet_url=_MILESIGHT_DOCS + "em300-sld-datasheet-en.pdf",
        lorawan=_V103,
        battery=Battery("ER18505 Li-SOCl2", replaceable=True),
        ingress_protection="IP67",
    ),
    # Elsys room sensors are for indoor use only (their manuals); no IP code is confirmed.
    DeviceModel(
        model_id="elsys-ers-co2",
        name="Elsys ERS CO2 indoor environment sensor",
        vendor_name=_ELSYS,
        uplink_interval_s=10 * 60,
        product_url="https://www.elsys.se/en/ers-co2/",
        datasheet_url=_ELSYS_DOCS + "ERS_CO2_datasheet.pdf",
        lorawan=_V103,
        battery=_ELSYS_AA,
    ),
    DeviceModel(
        model_id="elsys-ers",
        name="Elsys ERS indoor environment sensor",
        vendor_name=_ELSYS,
        uplink_interval_s=10 * 60,
        product_url="https://www.elsys.se/en/ers/",
        datasheet_url=_ELSYS_DOCS + "ERS_datasheet.pdf",
        lorawan=_V103,
        battery=_ELSYS_AA,
    ),
    DeviceModel(
        model_id="elsys-ers-lite",
        name="Elsys ERS Lite indoor environment sensor",
        vendor_name=_ELSYS,
        uplink_interval_s=10 * 60,
        product_url="https://www.elsys.se/en/ers-lite/",
        datasheet_url=_ELSYS_DOCS + "ERS_Lite_datasheet.pdf",
        lorawan=_V103,
        battery=_ELSYS_AA,
    ),
    # The repository gives IP67 for the ERS Sound, at odds with the indoor-only manual: None.
    DeviceModel(
        model_id="elsys-ers-sound",
        name="Elsys ERS Sound indoor environment sensor",
        vendor_name=_ELSYS,
        uplink_interval_s=10 * 60,
        product_url="https://www.elsys.se/en/ers-sound/",
        datasheet_url=_ELSYS_DOCS + "ERS_Sound_datasheet.pdf",
        lorawan=_V103,
        battery=Battery("3.6 V AA lithium", replaceable=True),
    ),
    # Reports changes plus a daily heartbeat. Its firmware 0.29 profile: LoRaWAN 1.0.2.
    # Bosch states no battery life we could confirm.
    DeviceModel(
        model_id="bosch-tps110",
        name="Bosch Parking Lot Sensor (TPS110)",
        vendor_name="Bosch Connected Devices and Solutions",
        uplink_interval_s=_DAY,
        product_url="https://www.bosch-connectivity.com/products/connected-mobility/"
        "parking-lot-sensor/",
        datasheet_url="https://www.bosch-connectivity.com/media/product_detail_pls/"
        "parking-lot-sensor-datasheet.pdf",
        lorawan=LoRaWAN("A", "1.0.2", "RP001-1.0.2-RevB"),
        battery=Battery("Li-SOCl2", replaceable=False),
        ingress_protection="IP69K",
    ),
    # Flush-mount (NPS-4.5-FM) and surface-mount (NPS-4.5-SM) variants share the codec.
    # Reports changes plus a heartbeat. The repository links no datasheet, and the
    # NPS405 profile it names is missing: device class and MAC version not confirmed.
    DeviceModel(
        model_id="nwave-nps405",
        name="Nwave NPS405 smart parking sensor (G4, flush or surface mount)",
        vendor_name="Nwave",
        uplink_interval_s=_DAY,
        product_url="https://www.nwave.io/smart-parking-sensor/",
        lorawan=LoRaWAN(None, None, None),
        battery=Battery(
            "Li-SOCl2, 10,800 mAh",
            replaceable=True,
            life_years=10,
            life_conditions="20 parking sessions a day",
        ),
        ingress_protection="IP68",
    ),
    # Dragino's EU868 profile: LoRaWAN 1.0.3, class A. Battery and IP code not confirmed.
    DeviceModel(
        model_id="dragino-lwl02",
        name="Dragino LWL02 water leak sensor",
        vendor_name="Dragino",
        uplink_interval_s=_DAY,
        product_url="https://www.dragino.com/products/lorawan-nb-iot-door-sensor-water-leak/"
        "item/180-lwl02.html",
        lorawan=_V103,
    ),
    # A payload format, not a product: no LoRaWAN, battery or enclosure claim.
    DeviceModel(
        model_id="cayenne-lpp",
        name="Any device sending Cayenne Low Power Payload",
        vendor_name="myDevices (Cayenne)",
        uplink_interval_s=_HOUR,
        product_url="https://github.com/myDevicesIoT/CayenneLPP",
        generic=True,
    ),
)


class UnknownModel(KeyError):
    """No device model has this id."""


@cache
def catalogue() -> Mapping[str, DeviceModel]:
    """Every described model by id, in the order above."""
    return {model.model_id: model for model in _MODELS}


def get(model_id: str) -> DeviceModel:
    """The model `model_id`; raises UnknownModel."""
    try:
        return catalogue()[model_id]
    except KeyError:
        raise UnknownModel(model_id) from None


def get_all(*, quantity: str | None = None, vendor: str | None = None) -> list[DeviceModel]:
    """Models that report `quantity` and come from `vendor` (codec vendor id), if given."""
    return [
        model
        for model in catalogue().values()
        if (quantity is None or any(q.name == quantity for q in model.quantities))
        and (vendor is None or model.vendor == vendor.lower())
    ]


def uplink_intervals() -> dict[str, int]:
    """Model id → expected uplink interval in seconds."""
    return {model_id: model.uplink_interval_s for model_id, model in catalogue().items()}


class QuantityRead(BaseModel):
    """A quantity a model reports."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    unit: str
    note: str = ""


class LoRaWANRead(BaseModel):
    """LoRaWAN device class, MAC version and regional parameters."""

    model_config = ConfigDict(from_attributes=True)

    device_class: str | None = Field(description="A, B or C")
    mac_version: str | None = Field(description="LoRaWAN MAC version, e.g. 1.0.3")
    regional_parameters: str | None = Field(description="e.g. RP001-1.0.3-RevA")
    band: str


class BatteryRead(BaseModel):
    """A model's battery; null fields are facts we could not confirm."""

    model_config = ConfigDict(from_attributes=True)

    kind: str | None
    replaceable: bool | None
    life_years: float | None = Field(description="as the vendor states it")
    life_conditions: str | None


class DeviceModelRead(BaseModel):
    """A device model as the API and the catalogue show it; null: not confirmed or n/a."""

    model_config = ConfigDict(from_attributes=True)

    model_id: str
    vendor: str
    vendor_name: str
    name: str
    generic: bool
    quantities: list[QuantityRead] = Field(description="from the model's codec")
    lorawan: LoRaWANRead | None
    uplink_interval_s: int = Field(description="expected time between uplinks at most")
    battery: BatteryRead | None
    ingress_protection: str | None
    product_url: str
    datasheet_url: str | None
