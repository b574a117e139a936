"""The fleet simulator: a deterministic town whose ChirpStack events parse and make sense."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from chirpstack_api.integration import JoinEvent, StatusEvent, UplinkEvent
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from core.embedded import EmbeddedBroker
from devices.codecs import CodecError, decode
from ingest.simulator import FleetSimulator, SimEvent, demo_fleet, publish, replay_clock
from ingest.simulator.fleet import TOWN_CENTRE

PARIS = ZoneInfo("Europe/Paris")
TUESDAY = datetime(2024, 3, 12, tzinfo=PARIS)
TYPES: dict[str, type[Message]] = {"up": UplinkEvent, "join": JoinEvent, "status": StatusEvent}
PLAUSIBLE = {
    "occupied": (0, 1),
    "leak": (0, 1),
    "battery": (1, 100),
    "temperature": (-25, 45),
    "humidity": (10, 100),
    "co2": (400, 5000),
}
QUANTITIES = {
    "bosch-tps110": {"occupied"},
    "milesight-am103": {"battery", "temperature", "humidity", "co2"},
    "milesight-em300-sld": {"battery", "temperature", "humidity", "leak"},
}

Parsed = list[tuple[SimEvent, Message | None]]


def parse(event: SimEvent) -> Message:
    """The event with protobuf's own parsers: JSON mapping or binary."""
    message = TYPES[event.event]()
    if event.payload.startswith(b"{"):
        return json_format.Parse(event.payload, message)
    message.ParseFromString(event.payload)
    return message


def parse_or_none(event: SimEvent) -> Message | None:
    try:
        return parse(event)
    except (json_format.ParseError, DecodeError, ValueError):
        return None


def readings(uplink: UplinkEvent) -> dict[str, float]:
    model = uplink.device_info.tags["model"]
    return {r.quantity: r.value for r in decode(model, uplink.f_port, uplink.data)}


@pytest.fixture(scope="module")
def day() -> Parsed:
    """A Tuesday of a 40-device town, replayed 30 s per uplink, JSON and Protobuf mixed."""
    simulator = FleetSimulator(demo_fleet(40, seed=1), protobuf=None, seed=1, malformed_ratio=0.02)
    parsed: Parsed = []
    for event in simulator.events(clock=replay_clock(TUESDAY, 30)):
        message = parse_or_none(event)
        if message is not None and message.time.ToDatetime(UTC) >= TUESDAY + timedelta(days=1):
            return parsed
        parsed.append((event, message))
    raise AssertionError("the event stream ended")


def uplinks(day: Parsed) -> list[tuple[SimEvent, UplinkEvent]]:
    return [(e, m) for e, m in day if e.event == "up" and not e.malformed]


def test_demo_fleet_is_the_same_for_the_same_seed() -> None:
    fleet = demo_fleet(50, seed=7)

    assert demo_fleet(50, seed=7) == fleet
    assert {d.dev_eui for d in demo_fleet(50, seed=8)}.isdisjoint(d.dev_eui for d in fleet)


def test_demo_fleet_mixes_parking_air_and_leak_sensors_in_town() -> None:
    fleet = demo_fleet(100)

    assert Counter(d.kind for d in fleet) == {"parking": 60, "air": 30, "leak": 10}
    assert len({d.dev_eui for d in fleet}) == 100
    assert len({d.name for d in fleet}) == 100
    assert all(re.fullmatch("[0-9a-f]{16}", d.dev_eui) for d in fleet)
    assert {(d.kind, d.model) for d in fleet} == {
        ("parking", "bosch-tps110"),
        ("air", "milesight-am103"),
        ("leak", "milesight-em300-sld"),
    }
    assert len({uuid.UUID(d.application_id) for d in fleet}) == 3
    lat, lon = TOWN_CENTRE
    assert all(abs(d.lat - lat) < 0.03 and abs(d.lon - lon) < 0.04 for d in fleet)
    assert any("École" in d.site for d in fleet if d.kind == "air")
    assert any("Chaufferie" in d.place for d in fleet if d.kind == "leak")


@pytest.mark.parametrize("n", [3, 4, 7])
def test_small_demo_fleets_have_one_device_of_each_kind(n: int) -> None:
    kinds = Counter(d.kind for d in demo_fleet(n))

    assert sum(kinds.values()) == n
    assert set(kinds) == {"parking", "air", "leak"}


def test_same_seed_and_clock_replay_the_same_events() -> None:
    def run() -> list[bytes]:
        simulator = FleetSimulator(demo_fleet(20), protobuf=None, seed=3)
        return [e.payload for e in simulator.events(300, clock=replay_clock(TUESDAY, 10))]

    assert run() == run()


@pytest.mark.parametrize("protobuf", [False, True])
def test_events_parse_back_with_protobuf_in_the_chosen_encoding(protobuf: bool) -> None:
    simulator = FleetSimulator(demo_fleet(30), protobuf=protobuf, malformed_ratio=0, status_every=5)
    events = list(simulator.events(400, clock=replay_clock(TUESDAY, 20)))

    assert len(events) == 400
    assert {e.event for e in events} == {"join", "up", "status"}
    for event in events:
        if protobuf:
            message = TYPES[event.event].FromString(event.payload)
        else:
            message = json_format.Parse(event.payload, TYPES[event.event]())
        info = message.device_info
        assert event.topic == (
            f"application/{info.application_id}/device/{info.dev_eui}/event/{event.event}"
        )
        assert message.deduplication_id == event.deduplication_id
        assert info.dev_eui == event.dev_eui


def test_a_mixed_day_holds_json_and_protobuf_events_that_all_parse(day: Parsed) -> None:
    valid = [(e, m) for e, m in day if not e.malformed]

    assert all(m is not None for _, m in valid)
    assert {e.payload.startswith(b"{") for e, _ in valid} == {True, False}


def test_json_looks_like_chirpstack_s(day: Parsed, shared_dir: Path) -> None:
    sample = json.loads((shared_dir / "chirpstack-events" / "up_elsys-ers-co2.json").read_text())
    event = next(e for e, _ in uplinks(day) if e.payload.startswith(b"{"))
    document = json.loads(event.payload)

    assert set(document) <= set(sample)
    assert {"deduplicationId", "time", "deviceInfo", "devAddr", "data", "rxInfo"} <= set(document)
    assert set(document["deviceInfo"]) == set(sample["deviceInfo"])
    assert document["deviceInfo"]["deviceClassEnabled"] == "CLASS_A"
    assert set(document["rxInfo"][0]) <= set(sample["rxInfo"][0])
    assert document["rxInfo"][0]["crcStatus"] == "CRC_OK"
    lora = document["txInfo"]["modulation"]["lora"]
    assert lora["bandwidth"] == 125000 and lora["codeRate"] == "CR_4_5"
    assert 7 <= lora["spreadingFactor"] <= 12
    assert document["txInfo"]["frequency"] in {868_100_000, 868_300_000, 868_500_000}


def test_uplinks_decode_to_plausible_readings(day: Parsed) -> None:
    for _, uplink in uplinks(day):
        values = readings(uplink)
        assert QUANTITIES[uplink.device_info.tags["model"]] <= set(values)
        for quantity, value in values.items():
            low, high = PLAUSIBLE[quantity]
            assert low <= value <= high, (quantity, value)


def test_malformed_events_are_unparsable_or_undecodable(day: Parsed) -> None:
    malformed = [(e, m) for e, m in day if e.malformed]
    garbage = [e for e, m in malformed if m is None]
    undecodable = [m for _, m in malformed if m is not None]

    assert garbage and undecodable
    assert all(e.event == "up" and e.deduplication_id is None for e in garbage)
    for uplink in undecodable:
        with pytest.raises(CodecError):
            readings(uplink)


def test_duplicate_uplinks_share_deduplication_id_and_time_but_not_rx_info(day: Parsed) -> None:
    duplicates = [i for i, (e, _) in enumerate(day) if e.duplicate]

    assert len(duplicates) > 0.05 * len(uplinks(day))
    for index in duplicates:
        (first, original), (_, copy) = day[index - 1], day[index]
        assert copy.deduplication_id == original.deduplication_id == first.deduplication_id
        assert copy.time == original.time
        assert list(copy.rx_info) != list(original.rx_info)
        assert [rx.gateway_id for rx in copy.rx_info] != [rx.gateway_id for rx in original.rx_info]
        copy.ClearField("rx_info")
        original.ClearField("rx_info")
        assert copy == original
    counts = Counter(e.deduplication_id for e, _ in day if e.event == "up" and e.deduplication_id)
    assert sum(n - 1 for n in counts.values()) == len(duplicates)


def test_each_device_joins_once_before_its_first_uplink(day: Parsed) -> None:
    joins = Counter(e.dev_eui for e, _ in day if e.event == "join")
    first_kind: dict[str, str] = {}
    for event, _ in day:
        first_kind.setdefault(event.dev_eui, event.event)

    assert joins == dict.fromkeys(first_kind, 1)
    assert len(joins) == 40
    assert set(first_kind.values()) == {"join"}


def test_first_uplink_after_join_omits_fcnt_zero_in_json() -> None:
    simulator = FleetSimulator(demo_fleet(3), protobuf=False, malformed_ratio=0)
    counters: dict[str, list[int | None]] = defaultdict(list)
    for event in simulator.events(60, clock=replay_clock(TUESDAY, 60)):
        if event.event == "up" and not event.duplicate:
            counters[event.dev_eui].append(json.loads(event.payload).get("fCnt"))

    assert len(counters) == 3
    for f_cnts in counters.values():
        assert f_cnts[:3] == [None, 1, 2]


def test_status_events_report_battery_and_margin(day: Parsed) -> None:
    statuses = [m for e, m in day if e.event == "status"]

    assert statuses
    assert all(0 < s.battery_level <= 100 and -20 <= s.margin <= 31 for s in statuses)


def occupancy_at(day: Parsed, when: datetime) -> float:
    """Share of bays whose last reported state before `when` is occupied."""
    state: dict[str, float] = {}
    for event, uplink in uplinks(day):
        if uplink.time.ToDatetime(UTC) > when:
            break
        if uplink.device_info.tags["kind"] == "parking":
            state[event.dev_eui] = readings(uplink)["occupied"]
    assert len(state) == 24
    return sum(state.values()) / len(state)


def test_parking_occupancy_follows_the_daily_profile(day: Parsed) -> None:
    night = occupancy_at(day, TUESDAY.replace(hour=3))
    late_morning = occupancy_at(day, TUESDAY.replace(hour=11))

    assert night < 0.45
    assert late_morning > 0.65
    assert late_morning - night > 0.35


def mean_classroom_co2(day: Parsed, hour: int) -> float:
    start = TUESDAY.replace(hour=hour) - timedelta(minutes=30)
    values = [
        readings(uplink)["co2"]
        for _, uplink in uplinks(day)
        if uplink.device_info.tags["kind"] == "air"
        and uplink.device_info.tags["site"].startswith("École")
        and start <= uplink.time.ToDatetime(UTC) < start + timedelta(hours=1)
    ]
    assert len(values) >= 6
    return sum(values) / len(values)


def test_classroom_co2_rises_during_lessons(day: Parsed) -> None:
    night = mean_classroom_co2(day, 3)
    lessons = mean_classroom_co2(day, 11)

    assert night < 550
    assert lessons > night + 500


def test_events_carry_the_current_time_by_default() -> None:
    event = next(FleetSimulator(demo_fleet(1)).events(1))

    stamped = parse(event).time.ToDatetime(UTC)
    assert math.isclose(stamped.timestamp(), datetime.now(UTC).timestamp(), abs_tol=60)


def test_a_large_fleet_publishes_its_first_events_at_their_own_time(
    broker: EmbeddedBroker,
) -> None:
    """Building 20,000 devices' state takes about a second: it must come before the first
    event is stamped, or that event leaves (and reaches ingest) a second after its time."""
    simulator = FleetSimulator(demo_fleet(20_000, seed=3), protobuf=None, seed=3)
    late: list[timedelta] = []
    publish(broker.url, simulator, rate=math.inf, count=20,
            observe=lambda event: late.append(datetime.now(UTC) - event.time))  # fmt: skip
    assert len(late) == 20
    assert max(late) < timedelta(seconds=0.25), max(late)
