"""Two seeded towns for the dashboard tests: Annecy (the viewer's) and Lyon (the other one)."""

from __future__ import annotations

import psycopg
import pytest

from tests.kit.dashboard import SeededTown, seed_town

ANNECY_SITES = ("Groupe scolaire Jules Ferry", "Mairie annexe")
LYON_SITES = ("Lycée Ampère", "Hôtel de ville de Lyon")


@pytest.fixture
def annecy(conn: psycopg.Connection) -> SeededTown:
    return seed_town(conn, "annecy", ANNECY_SITES)


@pytest.fixture
def lyon(conn: psycopg.Connection) -> SeededTown:
    return seed_town(conn, "lyon", LYON_SITES)
