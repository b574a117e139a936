"""What the simulated sensors measure through a town's day, in Europe/Paris local time."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from .fleet import SimDevice

PARIS = ZoneInfo("Europe/Paris")
OUTDOOR_CO2_PPM = 420.0
_MAX_CATCH_UP = timedelta(days=1)
_BATTERY_DRAIN_PER_HOUR = 100 / (6 * 365 * 24)  # a six-year battery

# Share of street bays occupied at each hour (linear in between): residents at night,
# peaks late in the morning and late in the afternoon, a lunch dip; quieter on Sundays.
_WEEKDAY_OCCUPANCY = (
    0.25, 0.22, 0.20, 0.18, 0.18, 0.20, 0.28, 0.45, 0.65, 0.78, 0.86, 0.90,
    0.80, 0.70, 0.74, 0.80, 0.86, 0.90, 0.82, 0.65, 0.50, 0.40, 0.33, 0.28,
)  # fmt: skip
_SUNDAY_OCCUPANCY = (
    0.25, 0.22, 0.20, 0.18, 0.18, 0.18, 0.20, 0.24, 0.30, 0.40, 0.50, 0.58,
    0.55, 0.45, 0.45, 0.50, 0.55, 0.55, 0.50, 0.42, 0.36, 0.32, 0.30, 0.27,
)  # fmt: skip
_SCHOOL_WORDS = ("école", "collège", "lycée", "groupe scolaire", "maternelle")


def local_hour(when: datetime) -> float:
    """Hours since local midnight in Paris, with fractions."""
    local = when.astimezone(PARIS)
    return local.hour + local.minute / 60 + local.second / 3600


def parking_occupancy_target(when: datetime) -> float:
    """Share of street bays occupied at `when` according to the daily profile."""
    table = _SUNDAY_OCCUPANCY if when.astimezone(PARIS).weekday() == 6 else _WEEKDAY_OCCUPANCY
    hour = local_hour(when)
    index, fraction = int(hour), hour % 1
    return table[index] + (table[(index + 1) % 24] - table[index]) * fraction


def outdoor_temperature(when: datetime) -> float:
    """An Alpine town's outdoor °C: seasonal mean, coldest at 03:00 and warmest at 15:00."""
    day = when.astimezone(PARIS).timetuple().tm_yday
    seasonal = 11.5 - 9.5 * math.cos(2 * math.pi * (day - 15) / 365.25)
    return seasonal - 5 * math.cos(2 * math.pi * (local_hour(when) - 3) / 24)


def room_use(usage: str, when: datetime) -> tuple[float, bool]:
    """(share of the room's occupants present, windows open) for a 'school' or 'office' room."""
    local = when.astimezone(PARIS)
    hour, weekday = local_hour(when), local.weekday()
    if weekday >= 5:
        return 0.0, False
    if usage == "office":
        return (1.0 if 8.5 <= hour < 12 or 13.5 <= hour < 17.5 else 0.0), False
    afternoon_class = weekday != 2 and 13.5 <= hour < 16.5  # no school on Wednesday afternoon
    recess = 10 <= hour < 10.25 or (afternoon_class and 15 <= hour < 15.25)
    in_class = 8.5 <= hour < 11.5 or afternoon_class
    return (1.0 if in_class and not recess else 0.0), recess


def _open(when: datetime) -> bool:
    """Building open on a weekday (doors, ventilation, cleaning): empty rooms air out faster."""
    return when.astimezone(PARIS).weekday() < 5 and 7.5 <= local_hour(when) < 18.5


def usage_of(site: str) -> str:
    """'school' for schools and colleges, 'office' for other buildings."""
    return "school" if any(word in site.lower() for word in _SCHOOL_WORDS) else "office"


def _steps(start: datetime, end: datetime, step: timedelta) -> Iterator[tuple[datetime, float]]:
    """(midpoint, hours) of the sub-intervals covering start..end, at most a day back."""
    start = max(start, end - _MAX_CATCH_UP)
    while start < end:
        stop = min(start + step, end)
        yield start + (stop - start) / 2, (stop - start).total_seconds() / 3600
        start = stop


def _two_state(
    rng: random.Random, state: int, on_rate: float, off_rate: float, hours: float
) -> int:
    """Draw the next state of an on/off process with constant rates (per hour) after `hours`."""
    total = on_rate + off_rate
    steady = on_rate / total
    p_on = steady + (state - steady) * math.exp(-total * hours)
    return int(rng.random() < p_on)


class Sensor:
    """What every simulated sensor has: a battery, the time it was last brought to, an alarm."""

    step = timedelta(minutes=10)

    def __init__(self, rng: random.Random, when: datetime) -> None:
        self.when = when
        self.battery = rng.uniform(55.0, 100.0)

    @property
    def alarm(self) -> int | None:
        """The state whose every change the device reports at once (None: it reports on time)."""
        return None

    def advance(self, rng: random.Random, when: datetime) -> None:
        """Bring the physical state forward to `when` (never backwards)."""
        if when <= self.when:
            return
        for midpoint, hours in _steps(self.when, when, self.step):
            self._evolve(rng, midpoint, hours)
        hours = (when - self.when).total_seconds() / 3600
        self.battery = max(1.0, self.battery - hours * _BATTERY_DRAIN_PER_HOUR)
        self.when = when

    def _evolve(self, rng: random.Random, when: datetime, hours: float) -> None:
        raise NotImplementedError

    def readings(self, rng: random.Random, *, heartbeat: bool) -> dict[str, float]:
        """The values of the next uplink (`heartbeat`: a periodic one, not an alarm change)."""
        raise NotImplementedError


class ParkingBay(Sensor):
    """A bay: an arrivals/departures process whose equilibrium follows the daily profile."""

    def __init__(self, rng: random.Random, when: datetime) -> None:
        super().__init__(rng, when)
        self.occupied = int(rng.random() < parking_occupancy_target(when))
        self.exposure = rng.uniform(-1.0, 3.0)  # shade or sun on the asphalt

    @property
    def alarm(self) -> int:
        """Occupied (1) or free (0)."""
        return self.occupied

    def _evolve(self, rng: random.Random, when: datetime, hours: float) -> None:
        target = min(parking_occupancy_target(when), 0.98)
        stay_hours = 80 / 60 if 8 <= local_hour(when) < 19 else 3.0
        departures = 1 / stay_hours
        arrivals = departures * target / (1 - target)
        self.occupied = _two_state(rng, self.occupied, arrivals, departures, hours)

    def readings(self, rng: random.Random, *, heartbeat: bool) -> dict[str, float]:
        """Occupancy, and the ground temperature on heartbeats."""
        if not heartbeat:
            return {"occupied": self.occupied}
        temperature = outdoor_temperature(self.when) + self.exposure + rng.gauss(0, 0.5)
        return {"occupied": self.occupied, "temperature": round(temperature)}


class Room(Sensor):
    """A classroom or office as one well-mixed volume: CO2 from occupants, heating, humidity."""

    step = timedelta(minutes=5)
    _CO2_M3_PER_PERSON_HOUR = 0.017

    def __init__(self, rng: random.Random, when: datetime, usage: str) -> None:
        super().__init__(rng, when)
        self.usage = usage
        self.capacity = rng.randint(22, 29) if usage == "school" else rng.randint(2, 6)
        self.volume = rng.uniform(160.0, 200.0) if usage == "school" else rng.uniform(45.0, 80.0)
        self.co2 = OUTDOOR_CO2_PPM + rng.uniform(0, 60)
        self.temperature = self._target_temperature(when, 0.0)
        self.present = 0.0

    def _target_temperature(self, when: datetime, people: float) -> float:
        local = when.astimezone(PARIS)
        heated = local.weekday() < 5 and 6.5 <= local_hour(when) < 18  # with a night setback
        setpoint = 20.0 if heated else 16.5
        free_running = 15 + 0.35 * outdoor_temperature(when)
        return max(setpoint, free_running) + 0.04 * people

    def _evolve(self, rng: random.Random, when: datetime, hours: float) -> None:
        share, aired = room_use(self.usage, when)
        people = share * self.capacity
        air_changes = 6.0 if aired else 1.5 if people else 2.0 if _open(when) else 0.3
        steady = OUTDOOR_CO2_PPM + people * self._CO2_M3_PER_PERSON_HOUR * 1e6 / (
            self.volume * air_changes
        )
        self.co2 = steady + (self.co2 - steady) * math.exp(-air_changes * hours)
        target = self._target_temperature(when, people)
        self.temperature = target + (self.temperature - target) * math.exp(-hours / 1.5)
        self.present = share

    def readings(self, rng: random.Random, *, heartbeat: bool) -> dict[str, float]:
        """Battery, temperature, humidity and CO2 as an AM103 reports them."""
        day = self.when.astimezone(PARIS).timetuple().tm_yday
        humidity = 44 + 8 * math.cos(2 * math.pi * (day - 200) / 365.25) + 6 * self.present
        return {
            "battery": round(self.battery),
            "temperature": round(self.temperature + rng.gauss(0, 0.1), 1),
            "humidity": round(2 * (humidity + rng.gauss(0, 1))) / 2,
            "co2": max(400, round(self.co2 + rng.gauss(0, 10))),
        }


class LeakSpot(Sensor):
    """A boiler room or a basement floor: temperature, humidity and, rarely, a leak."""

    _LEAKS_PER_HOUR = 1 / (10 * 24)  # about one leak in ten days
    _LEAK_HOURS = 3.0

    def __init__(self, rng: random.Random, when: datetime, boiler_room: bool) -> None:
        super().__init__(rng, when)
        self.boiler_room = boiler_room
        self.leak = 0

    @property
    def alarm(self) -> int:
        """Water detected (1) or dry (0)."""
        return self.leak

    def _evolve(self, rng: random.Random, when: datetime, hours: float) -> None:
        self.leak = _two_state(rng, self.leak, self._LEAKS_PER_HOUR, 1 / self._LEAK_HOURS, hours)

    def readings(self, rng: random.Random, *, heartbeat: bool) -> dict[str, float]:
        """Battery, temperature, humidity and leak as an EM300-SLD reports them."""
        outdoor = outdoor_temperature(self.when)
        if self.boiler_room:
            temperature = 27.0 if outdoor < 15 else 21.0 + 0.2 * outdoor
        else:
            temperature = 13.0 + 0.3 * (outdoor - 10)
        humidity = (58 if self.boiler_room else 72) + 15 * self.leak + rng.gauss(0, 1.5)
        return {
            "battery": round(self.battery),
            "temperature": round(temperature + rng.gauss(0, 0.2), 1),
            "humidity": round(2 * min(humidity, 99.0)) / 2,
            "leak": self.leak,
        }


def sensor_for(device: SimDevice, rng: random.Random, when: datetime) -> Sensor:
    """The physical model behind `device`, in its state at `when`."""
    if device.kind == "parking":
        return ParkingBay(rng, when)
    if device.kind == "air":
        return Room(rng, when, usage_of(device.site))
    return LeakSpot(rng, when, "chauffer" in f"{device.place} {device.name}".lower())
