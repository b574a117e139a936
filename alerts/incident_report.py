"""A town's monthly incident report: what was opened, how the service levels were kept, how
long resolution took, and what was still open at the month's end.

The month is the town's local month. The figures, replayed from the incidents' histories:

- `opened`: incidents opened in the month, per class and priority (their current ones,
  after any re-qualification), and their total.
- `compliance`: the GTI and the GTR clocks of those incidents as they stand at the report's
  instant `as_of`: `met`, `missed` (reached late, or not reached and past the deadline: a
  still-open breached clock counts as missed), `pending` (running within its delay, or
  paused) and `rate` = met / (met + missed), null while nothing is decided. A past month's
  figures can still move while its incidents are open.
- `resolution`: from the opening to the (last) resolution of those incidents resolved or
  closed at `as_of`, in `counted_hours` (the GTR clock's counted time: business hours only
  in business mode, waits excluded) and in `wall_hours` (plain elapsed time, waits
  included): count, p50 and p90 (nearest rank), max, and buckets of hours.
- `backlog`: incidents opened before the month's end and neither resolved nor closed at
  that instant (at `as_of` for the current month), per current priority.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from . import incidents
from .sla import ClockState, IncidentClass, Milestone, Priority
from .workflow import Step, replay

__all__ = ["BUCKETS", "Month", "monthly", "to_csv"]

#: Upper bounds (hours, exclusive) of the resolution-time buckets; the last is open-ended.
BUCKETS = (1, 4, 12, 24, 72)
_BUCKET_LABELS = (
    "<1h", *(f"{low}-{high}h" for low, high in itertools.pairwise(BUCKETS)),
    f">={BUCKETS[-1]}h",
)  # fmt: skip
_MET = {ClockState.MET}
_MISSED = {ClockState.MISSED, ClockState.BREACHED}


@dataclass(frozen=True)
class Month:
    """A calendar month."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """`YYYY-MM`; ValueError otherwise."""
        try:
            first = date.fromisoformat(f"{text}-01")
        except ValueError:
            raise ValueError(f"month {text!r} is not YYYY-MM") from None
        return cls(first.year, first.month)

    @classmethod
    def containing(cls, moment: datetime, zone: ZoneInfo) -> Month:
        """The local month of an instant."""
        local = moment.astimezone(zone)
        return cls(local.year, local.month)

    def previous(self) -> Month:
        """The month before."""
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """Its first instant and the next month's, in UTC."""
        following = (
            Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)
        )
        first, after = (datetime(m.year, m.month, 1, tzinfo=zone) for m in (self, following))
        return first.astimezone(UTC), after.astimezone(UTC)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def town_zone(conn: psycopg.Connection, tenant_id: int) -> ZoneInfo:
    """The town's time zone."""
    row = conn.execute("SELECT timezone FROM tenants WHERE id = %s", (tenant_id,)).fetchone()
    assert row is not None, f"no tenant {tenant_id}"
    return ZoneInfo(row[0])


def _until(steps: list[Step], moment: datetime) -> list[Step]:
    return [step for step in steps if step.at < moment]


def _distribution(hours: list[float]) -> dict[str, Any]:
    ordered = sorted(hours)

    def rank(q: float) -> float | None:
        return round(ordered[math.ceil(q * len(ordered)) - 1], 2) if ordered else None

    buckets = dict.fromkeys(_BUCKET_LABELS, 0)
    for value in ordered:
        index = next((i for i, bound in enumerate(BUCKETS) if value < bound), len(BUCKETS))
        buckets[_BUCKET_LABELS[index]] += 1
    return {"count": len(ordered), "p50": rank(0.5), "p90": rank(0.9), "max": rank(1.0),
            "buckets": buckets}  # fmt: skip


def monthly(
    conn: psycopg.Connection, tenant_id: int, month: Month, *, at: datetime | None = None
) -> dict[str, Any]:
    """The report of `month` as it stands at `at` (now by default); ValueError for a month
    that has not started."""
    zone = town_zone(conn, tenant_id)
    start, end = month.bounds(zone)
    as_of = (at or datetime.now(UTC)).astimezone(UTC)
    if start > as_of:
        raise ValueError(f"month {month} has not started yet")
    policy = incidents.sla_policy(conn, tenant_id)
    cutoff = min(end, as_of)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT id, incident_class, priority, opened_at, closed_at FROM incidents"
            " WHERE tenant_id = %s AND opened_at < %s AND (closed_at IS NULL OR closed_at >= %s"
            " OR opened_at >= %s) ORDER BY id",
            (tenant_id, cutoff, cutoff, start),
        ).fetchall()
    steps = incidents.steps_of(conn, [row["id"] for row in rows])

    priorities = [p.value for p in Priority]
    opened = {kind.value: dict.fromkeys(priorities, 0) for kind in IncidentClass}
    compliance: dict[str, dict[str, Any]] = {
        m.value: {"met": 0, "missed": 0, "pending": 0} for m in Milestone
    }
    counted: list[float] = []
    wall: list[float] = []
    backlog = dict.fromkeys(priorities, 0)
    for row in rows:
        if row["opened_at"] < start:  # opened before the month: in the backlog only
            history = replay(row["opened_at"], _until(steps[row["id"]], cutoff))
        else:
            opened[row["incident_class"]][row["priority"]] += 1
            history = replay(row["opened_at"], _until(steps[row["id"]], as_of))
            for milestone, clock in incidents.clocks(policy, history, row["priority"]).items():
                state = clock.state(max(as_of, clock.opened_at))
                outcome = "met" if state in _MET else "missed" if state in _MISSED else "pending"
                compliance[milestone.value][outcome] += 1
                if milestone is Milestone.GTR and clock.reached_at is not None:
                    counted.append(clock.elapsed(clock.reached_at).total_seconds() / 3600)
                    wall.append((clock.reached_at - clock.opened_at).total_seconds() / 3600)
            if cutoff < as_of:  # the backlog is at the month's end, not at as_of
                history = replay(row["opened_at"], _until(steps[row["id"]], cutoff))
        if row["opened_at"] < cutoff and history.state not in incidents.SETTLED:
            backlog[row["priority"]] += 1

    for figures in compliance.values():
        decided = figures["met"] + figures["missed"]
        figures["rate"] = round(figures["met"] / decided, 4) if decided else None
    return {
        "month": str(month),
        "timezone": zone.key,
        "from": start,
        "to": end,
        "as_of": as_of,
        "calendar": policy.calendar.value,
        "opened": {"total": sum(sum(p.values()) for p in opened.values()), "by_class": opened},
        "compliance": compliance,
        "resolution": {"counted_hours": _distribution(counted), "wall_hours": _distribution(wall)},
        "backlog": {"at": cutoff, "total": sum(backlog.values()), "by_priority": backlog},
    }


def _number(value: float | int | None) -> str:
    """French spreadsheets read decimal commas."""
    if value is None:
        return ""
    return str(value).replace(".", ",")


def to_csv(report: dict[str, Any]) -> bytes:
    """The report as one flat CSV table `section;key;value`, for French spreadsheets.

    UTF-8 with a BOM, `;` separators and decimal commas, instants in ISO 8601 UTC. Sections:
    `period` (month, timezone, from, to, as_of, calendar), `opened` (`<class> <priority>` and
    `total`), `gti` and `gtr` (met, missed, pending, rate), `resolution_counted_hours` and
    `resolution_wall_hours` (count, p50, p90, max, then one row per bucket), `backlog`
    (at, each priority, total).
    """
    rows: list[tuple[str, str, str]] = [
        ("period", key, str(report[key])) for key in ("month", "timezone", "calendar")
    ]
    rows += [("period", key, report[key].isoformat()) for key in ("from", "to", "as_of")]
    for kind, per_priority in report["opened"]["by_class"].items():
        rows += [("opened", f"{kind} {p}", str(n)) for p, n in per_priority.items()]
    rows.append(("opened", "total", str(report["opened"]["total"])))
    for milestone, figures in report["compliance"].items():
        rows += [(milestone, key, _number(value)) for key, value in figures.items()]
    for unit, figures in report["resolution"].items():
        section = f"resolution_{unit}"
        rows += [(section, key, _number(figures[key])) for key in ("count", "p50", "p90", "max")]
        rows += [(section, label, str(n)) for label, n in figures["buckets"].items()]
    backlog = report["backlog"]
    rows.append(("backlog", "at", backlog["at"].isoformat()))
    rows += [("backlog", p, str(n)) for p, n in backlog["by_priority"].items()]
    rows.append(("backlog", "total", str(backlog["total"])))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(("section", "key", "value"))
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")
