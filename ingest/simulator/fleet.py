"""The demo town: a deterministic fleet of parking, air-quality and leak sensors in Annecy."""

from __future__ import annotations

import math
import random
import re
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

TOWN = "Annecy"
TOWN_CENTRE = (45.8992, 6.1294)
_IDS = uuid.uuid5(uuid.NAMESPACE_DNS, "demo.civicsense")

TENANT_ID = str(uuid.uuid5(_IDS, "tenant"))
TENANT_NAME = f"Ville d'{TOWN}"
MODEL_BY_KIND = {"parking": "bosch-tps110", "air": "milesight-am103", "leak": "milesight-em300-sld"}
APPLICATION_NAMES = {"parking": "stationnement", "air": "qualite-air", "leak": "detection-fuites"}
APPLICATION_IDS = {kind: str(uuid.uuid5(_IDS, f"application/{kind}")) for kind in MODEL_BY_KIND}
PROFILE_NAMES = {
    "bosch-tps110": "Bosch TPS110",
    "milesight-am103": "Milesight AM103",
    "milesight-em300-sld": "Milesight EM300-SLD",
}
# Five leading DevEUI bytes per model (vendor OUI + product), then one seed byte and a counter.
_EUI_PREFIX = {
    "bosch-tps110": "fcd6bd0110",
    "milesight-am103": "24e124710c",
    "milesight-em300-sld": "24e124136c",
}
_SHARES = {"air": 0.3, "leak": 0.1}
_BAY_SPACING_M = 5.5

# (street, bay code, first bay latitude, longitude, bearing in degrees)
_STREETS = (
    ("Rue Royale", "ROY", 45.9004, 6.1238, 75),
    ("Rue Sommeiller", "SOM", 45.9020, 6.1245, 80),
    ("Rue Vaugelas", "VAU", 45.9012, 6.1262, 160),
    ("Avenue d'Albigny", "ALB", 45.9036, 6.1330, 60),
    ("Rue Carnot", "CAR", 45.9013, 6.1221, 170),
    ("Rue de la Poste", "POS", 45.9010, 6.1282, 110),
    ("Avenue de Chevênes", "CHE", 45.9055, 6.1190, 20),
    ("Rue du Président Favre", "FAV", 45.8998, 6.1222, 90),
    ("Boulevard du Lycée", "LYC", 45.9060, 6.1270, 90),
    ("Quai Eustache Chappuis", "EUS", 45.8990, 6.1275, 100),
)
# (building, latitude, longitude, rooms with an air sensor, rooms with a leak sensor)
_BUILDINGS: tuple[tuple[str, float, float, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "École élémentaire Vaugelas",
        45.9017,
        6.1268,
        ("CP", "CE1", "CE2", "CM1", "CM2", "Salle polyvalente"),
        ("Chaufferie",),
    ),
    (
        "Hôtel de ville",
        45.8992,
        6.1296,
        ("Accueil", "Salle du conseil", "Bureau du maire", "État civil", "Urbanisme"),
        ("Sous-sol", "Local archives"),
    ),
    (
        "Groupe scolaire des Romains",
        45.9105,
        6.1205,
        ("Petite section", "Grande section", "CP-CE1", "CE2", "CM1-CM2", "Bibliothèque"),
        ("Chaufferie", "Sous-sol"),
    ),
    (
        "Collège Raoul Blanchard",
        45.9048,
        6.1240,
        ("Salle 101", "Salle 102", "Salle 104", "Salle 201", "Salle 203", "Labo SVT", "CDI"),
        ("Chaufferie", "Vide sanitaire"),
    ),
    (
        "Médiathèque Bonlieu",
        45.9011,
        6.1306,
        ("Salle de lecture", "Espace jeunesse", "Auditorium"),
        ("Local technique",),
    ),
)


@dataclass(frozen=True)
class SimDevice:
    """A simulated sensor as the network server knows it; `place` is its bay code or room."""

    dev_eui: str
    model: str
    name: str
    kind: str
    site: str
    application_id: str
    lat: float
    lon: float
    place: str = ""


def demo_fleet(n: int, *, seed: int = 0) -> list[SimDevice]:
    """`n` devices of the demo town (~60 % parking, ~30 % air, ~10 % leak), the same for a seed."""
    if not 0 <= n < 0x10000:
        raise ValueError("a demo fleet holds 0 to 65535 devices")
    rng = random.Random(seed)
    counts = _kind_counts(n)
    return [
        *_parking_bays(counts["parking"], seed, rng),
        *_rooms("air", counts["air"], seed, rng),
        *_rooms("leak", counts["leak"], seed, rng),
    ]


def _kind_counts(n: int) -> dict[str, int]:
    counts = {kind: max(1, round(share * n)) if n >= 3 else 0 for kind, share in _SHARES.items()}
    if n == 2:
        counts["air"] = 1
    return {"parking": n - sum(counts.values()), **counts}


def _device(
    kind: str, seed: int, index: int, name: str, site: str, place: str, lat: float, lon: float
) -> SimDevice:
    return SimDevice(
        dev_eui=f"{_EUI_PREFIX[MODEL_BY_KIND[kind]]}{seed % 256:02x}{index:04x}",
        model=MODEL_BY_KIND[kind],
        name=name,
        kind=kind,
        site=site,
        application_id=APPLICATION_IDS[kind],
        lat=round(lat, 6),
        lon=round(lon, 6),
        place=place,
    )


def _parking_bays(count: int, seed: int, rng: random.Random) -> Iterator[SimDevice]:
    streets = rng.sample(_STREETS, len(_STREETS))
    for index in range(count):
        street, code, lat, lon, bearing = streets[index % len(streets)]
        rank = index // len(streets)
        along = (rank // 2) * _BAY_SPACING_M + rng.uniform(-0.3, 0.3)
        side = 4.0 if rank % 2 else -4.0
        bay_lat, bay_lon = _offset(lat, lon, bearing, along, side)
        bay = f"{code}-{rank + 1:03d}"
        yield _device(
            "parking",
            seed,
            index,
            name=f"tps110-{bay.lower()}",
            site=street,
            place=bay,
            lat=bay_lat,
            lon=bay_lon,
        )


def _rooms(kind: str, count: int, seed: int, rng: random.Random) -> Iterator[SimDevice]:
    spots = _room_spots(kind)
    prefix = "am103" if kind == "air" else "em300-sld"
    for index in range(count):
        building, lat, lon, room = spots[index % len(spots)]
        repeat = index // len(spots)
        place = f"{room} ({repeat + 1})" if repeat else room
        yield _device(
            kind,
            seed,
            index,
            name=f"{prefix}-{slug(building)}-{slug(place)}",
            site=building,
            place=place,
            lat=lat + rng.uniform(-1e-4, 1e-4),
            lon=lon + rng.uniform(-1e-4, 1e-4),
        )


def _room_spots(kind: str) -> list[tuple[str, float, float, str]]:
    """(building, lat, lon, room) taking buildings in turn, so a small fleet spans several."""
    per_building = [(b[0], b[1], b[2], b[3] if kind == "air" else b[4]) for b in _BUILDINGS]
    depth = max(len(rooms) for *_, rooms in per_building)
    return [
        (name, lat, lon, rooms[rank])
        for rank in range(depth)
        for name, lat, lon, rooms in per_building
        if rank < len(rooms)
    ]


def _offset(
    lat: float, lon: float, bearing: float, along: float, side: float
) -> tuple[float, float]:
    """The point `along` metres on `bearing` from (lat, lon), then `side` metres to its right."""
    angle = math.radians(bearing)
    north = along * math.cos(angle) - side * math.sin(angle)
    east = along * math.sin(angle) + side * math.cos(angle)
    return lat + north / 111_320, lon + east / (111_320 * math.cos(math.radians(lat)))


def slug(text: str) -> str:
    """Lowercase ASCII words joined by hyphens: 'École élémentaire' -> 'ecole-elementaire'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
