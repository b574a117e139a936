"""Parking reports: the daily reconciliation of payment sessions, zones without payments,
and occupancy and compliance per hour. Every query runs on the connection's tenant
(row-level security); days are local days of the tenant's timezone.

Rules worth knowing:

- **Which day a session belongs to.** A session is reconciled on the local day it
  ended: its stop (`stopped_at`) or, for a session never stopped, its paid end
  (`ends_at`). A session with neither (a pay-at-stop session still running) is in no
  day yet. Late events move a session (a stop arriving tomorrow for yesterday's
  session puts it in yesterday's report): a report is a snapshot, re-run it to see them.
- **Parked minutes** are wall-clock minutes from start to that end, rounded to the
  minute per session. A session without an amount counts 0 € and is counted `unpriced`.
- **Plates** are personal data and stay out of the reports: sessions are identified by
  the operator's reference (`external_id`).
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from core import hours

from . import tariffs

ZERO = Decimal("0.00")
WARNING_AFTER = timedelta(days=1)
RED_AFTER = timedelta(days=10)
SOURCE_LABELS = {
    "provider": "Opérateur",
    "builtin": "Service municipal",
    "pay_station": "Horodateur",
}

_TENANT = "SELECT name, timezone FROM tenants WHERE id = %s"
_ENDED = """
SELECT s.id, s.source, s.provider, s.external_id, z.code AS zone, b.code AS bay,
       s.started_at, s.ends_at, s.stopped_at, coalesce(s.stopped_at, s.ends_at) AS ended_at,
       s.amount, s.service_amount, s.currency
FROM parking_sessions s
JOIN parking_zones z ON z.id = s.zone_id
LEFT JOIN parking_bays b ON b.id = s.bay_id
WHERE coalesce(s.stopped_at, s.ends_at) >= %(start)s AND coalesce(s.stopped_at, s.ends_at) < %(end)s
ORDER BY s.source, s.provider, z.code, ended_at, s.id
"""
_LAST_PAYMENTS = """
SELECT z.code, z.name, z.created_at, max(s.started_at) AS last_payment
FROM parking_zones z LEFT JOIN parking_sessions s ON s.zone_id = z.id
WHERE z.active
GROUP BY z.id ORDER BY z.code
"""
_ZONES = """
SELECT z.id, z.code, z.hours, z.tariff, z.grace_minutes,
       (SELECT count(*) FROM parking_bays b WHERE b.zone_id = z.id) AS bays
FROM parking_zones z
WHERE z.active AND (%(zone)s::text IS NULL OR z.code = %(zone)s)
ORDER BY z.code
"""
_STAYS = """
SELECT b.zone_id, o.bay_id, o.arrived_at, o.left_at
FROM bay_occupancy o JOIN parking_bays b ON b.id = o.bay_id
WHERE b.zone_id = ANY(%(zones)s) AND o.arrived_at < %(end)s
  AND (o.left_at IS NULL OR o.left_at > %(start)s)
"""
# least() ignores NULLs: paid until the earlier of the stop and the paid end, or open.
_PAID = """
SELECT zone_id, bay_id, started_at, least(stopped_at, ends_at) AS paid_until
FROM parking_sessions
WHERE zone_id = ANY(%(zones)s) AND started_at < %(end)s
  AND (least(stopped_at, ends_at) IS NULL OR least(stopped_at, ends_at) > %(start)s)
"""


def tenant_info(conn: psycopg.Connection, tenant_id: int) -> tuple[str, ZoneInfo]:
    """The tenant's name and timezone (Europe/Paris when the row is out of reach)."""
    row = conn.execute(_TENANT, (tenant_id,)).fetchone()
    return (row[0], ZoneInfo(row[1])) if row else ("", ZoneInfo("Europe/Paris"))


def yesterday(tz: tzinfo, now: datetime | None = None) -> date:
    """The local day before `now` (default: the current time)."""
    return (now or datetime.now(UTC)).astimezone(tz).date() - timedelta(days=1)


def day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """Local midnight of `day` and of the next day, in UTC (23 or 25 hours apart on DST days)."""
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


# --- reconciliation ------------------------------------------------------------------


@dataclass
class Line:
    """Sessions of one (source, provider, zone), or a subtotal / total when those are ''."""

    source: str
    provider: str
    zone: str
    sessions: int = 0
    minutes: int = 0
    amount: Decimal = ZERO
    service_amount: Decimal = ZERO
    unpriced: int = 0

    @property
    def total(self) -> Decimal:
        """Public fee plus services."""
        return self.amount + self.service_amount

    def add(self, minutes: int, amount: Decimal | None, service_amount: Decimal) -> None:
        """Count one session (or fold another line in with `add_line`)."""
        self.sessions += 1
        self.minutes += minutes
        self.amount += amount if amount is not None else ZERO
        self.service_amount += service_amount
        self.unpriced += amount is None

    def add_line(self, other: Line) -> None:
        """Fold `other` into this one."""
        self.sessions += other.sessions
        self.minutes += other.minutes
        self.amount += other.amount
        self.service_amount += other.service_amount
        self.unpriced += other.unpriced

    def as_json(self) -> dict[str, Any]:
        """JSON-safe (amounts as strings, never floats)."""
        return {
            "source": self.source, "provider": self.provider, "zone": self.zone,
            "sessions": self.sessions, "minutes": self.minutes, "amount": str(self.amount),
            "service_amount": str(self.service_amount), "total": str(self.total),
            "unpriced": self.unpriced,
        }  # fmt: skip


@dataclass
class Reconciliation:
    """A day's sessions grouped by (source, provider, zone), with the sessions themselves."""

    day: date
    timezone: str
    lines: list[Line]
    total: Line
    sessions: list[dict[str, Any]] = field(default_factory=list)

    def providers(self) -> dict[tuple[str, str], list[Line]]:
        """The lines per (source, provider), in report order."""
        grouped: dict[tuple[str, str], list[Line]] = defaultdict(list)
        for line in self.lines:
            grouped[(line.source, line.provider)].append(line)
        return dict(grouped)

    def as_json(self) -> dict[str, Any]:
        """The whole report, JSON-safe."""
        detail = [
            {**s, "amount": None if s["amount"] is None else str(s["amount"]),
             "service_amount": str(s["service_amount"])}
            for s in self.sessions
        ]  # fmt: skip
        return {
            "day": self.day.isoformat(), "timezone": self.timezone,
            "rule": "sessions whose stop (or, never stopped, paid end) falls on the local day",
            "lines": [line.as_json() for line in self.lines], "total": self.total.as_json(),
            "sessions": detail,
        }  # fmt: skip


def _minutes(start: datetime, end: datetime) -> int:
    seconds = (end - start).total_seconds()
    return int((seconds + 30) // 60)


def reconciliation(conn: psycopg.Connection, day: date, tz: tzinfo) -> Reconciliation:
    """The sessions that ended on local `day` (module docstring), grouped and totalled."""
    start, end = day_bounds(day, tz)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_ENDED, {"start": start, "end": end}).fetchall()
    lines: dict[tuple[str, str, str], Line] = {}
    total = Line("", "", "")
    sessions = []
    for row in rows:
        key = (row["source"], row["provider"], row["zone"])
        line = lines.setdefault(key, Line(*key))
        minutes = _minutes(row["started_at"], row["ended_at"])
        line.add(minutes, row["amount"], row["service_amount"])
        total.add(minutes, row["amount"], row["service_amount"])
        sessions.append({**row, "minutes": minutes})
    return Reconciliation(day, str(tz), list(lines.values()), total, sessions)


# --- CSV and PDF renderings --------------------------------------------------------

CSV_COLUMNS = (
    "ligne", "source", "opérateur", "zone", "référence", "place", "début", "fin payée", "arrêt",
    "minutes", "sessions", "montant public (EUR)", "services (EUR)", "total (EUR)",
)  # fmt: skip


def _euros(value: Decimal | None) -> str:
    """French spreadsheet notation: decimal comma, two decimals."""
    return "" if value is None else f"{value:.2f}".replace(".", ",")


def _local(value: datetime | None, tz: tzinfo) -> str:
    return "" if value is None else value.astimezone(tz).strftime("%d/%m/%Y %H:%M:%S")


def to_csv(report: Reconciliation) -> bytes:
    """The reconciliation as one CSV table for French spreadsheets.

    UTF-8 with a BOM (Excel then reads the accents right), `;` separators and decimal
    commas, local times as dd/mm/yyyy hh:mm:ss. The first column says what a row is:
    `session` (one per session), `sous-total` (per source, operator and zone) and one
    `total`; the totals are the sums of the session rows.
    """
    tz = ZoneInfo(report.timezone)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for s in report.sessions:
        writer.writerow([
            "session", s["source"], s["provider"], s["zone"], s["external_id"], s["bay"] or "",
            _local(s["started_at"], tz), _local(s["ends_at"], tz), _local(s["stopped_at"], tz),
            s["minutes"], 1, _euros(s["amount"]), _euros(s["service_amount"]),
            _euros((s["amount"] or ZERO) + s["service_amount"]),
        ])  # fmt: skip
    for line in [*report.lines, report.total]:
        kind = "total" if line is report.total else "sous-total"
        writer.writerow([
            kind, line.source, line.provider, line.zone, "", "", "", "", "", line.minutes,
            line.sessions, _euros(line.amount), _euros(line.service_amount), _euros(line.total),
        ])  # fmt: skip
    return out.getvalue().encode("utf-8-sig")


def _latin1(text: str) -> str:
    """PDF core fonts speak Latin-1: spell out what they cannot draw."""
    for char, spelled in (("€", "EUR"), ("œ", "oe"), ("Œ", "OE"), ("’", "'"), ("—", "-")):
        text = text.replace(char, spelled)
    return text.encode("latin-1", "replace").decode("latin-1")


def french_date(day: date) -> str:
    """23/11/2026."""
    return day.strftime("%d/%m/%Y")


def to_pdf(report: Reconciliation, town: str = "") -> bytes:
    """The reconciliation as an A4 PDF: a table per operator (one row per zone, a
    subtotal), then the grand total."""
    from fpdf import FPDF  # imported here: only reports need it

    widths = (50, 25, 25, 30, 30, 30)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 16)
    pdf.cell(0, 10, _latin1(f"Rapprochement du {french_date(report.day)}"),
             new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    pdf.set_font("helvetica", "", 10)
    subtitle = (f"{town + ' - ' if town else ''}sessions terminées le {french_date(report.day)}"
                f" (heure locale, {report.timezone}). Montants en euros.")  # fmt: skip
    pdf.multi_cell(0, 5, _latin1(subtitle), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    def row(values: tuple[str, ...], bold: bool = False) -> None:
        pdf.set_font("helvetica", "B" if bold else "", 9)
        for index, (width, value) in enumerate(zip(widths, values, strict=True)):
            align = "L" if index == 0 else "R"
            pdf.cell(width, 6, _latin1(value), border=1, align=align)
        pdf.ln()

    header = ("Zone", "Sessions", "Minutes", "Public", "Services", "Total")

    def numbers(line: Line) -> tuple[str, ...]:
        return (str(line.sessions), str(line.minutes), _euros(line.amount),
                _euros(line.service_amount), _euros(line.total))  # fmt: skip

    if not report.lines:
        pdf.cell(0, 8, _latin1("Aucune session terminée ce jour."), new_x="LMARGIN", new_y="NEXT")
    for (source, provider), lines in report.providers().items():
        pdf.set_font("helvetica", "B", 11)
        title = f"{SOURCE_LABELS.get(source, source)} : {provider}"
        pdf.cell(0, 8, _latin1(title), new_x="LMARGIN", new_y="NEXT")
        row(header, bold=True)
        subtotal = Line(source, provider, "")
        for line in lines:
            row((line.zone, *numbers(line)))
            subtotal.add_line(line)
        row(("Sous-total", *numbers(subtotal)), bold=True)
        pdf.ln(3)
    pdf.set_font("helvetica", "B", 11)
    pdf.cell(0, 8, "Total", new_x="LMARGIN", new_y="NEXT")
    row(("", *header[1:]), bold=True)
    row(("Total général", *numbers(report.total)), bold=True)
    if report.total.unpriced:
        pdf.set_font("helvetica", "I", 8)
        note = f"{report.total.unpriced} session(s) sans montant communiqué, comptées 0,00."
        pdf.cell(0, 6, _latin1(note), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


# --- zones without payments ------------------------------------------------------------


def stale_zones(conn: psycopg.Connection, now: datetime) -> list[dict[str, Any]]:
    """Active zones where no payment session started for more than a day (`warning`) or
    ten days (`red`), most silent first. A zone never paid in is measured from its
    creation (`last_payment` None): a zone opened this morning is not flagged yet."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_LAST_PAYMENTS).fetchall()
    flagged = []
    for row in rows:
        since = row["last_payment"] or row["created_at"]
        idle = now - since
        if idle <= WARNING_AFTER:
            continue
        flag: Literal["warning", "red"] = "red" if idle > RED_AFTER else "warning"
        flagged.append({
            "zone": row["code"], "name": row["name"], "last_payment": row["last_payment"],
            "idle_hours": int(idle.total_seconds() // 3600), "flag": flag,
        })  # fmt: skip
    return sorted(flagged, key=lambda z: -z["idle_hours"])


# --- occupancy, turnover, compliance per hour ----------------------------------------


@dataclass
class HourStats:
    """One zone over one local hour (or the whole day)."""

    start: datetime
    seconds: float
    bays: int
    occupied_seconds: float = 0.0
    arrivals: int = 0
    departures: int = 0
    dwell_seconds: float = 0.0
    regulated_occupied_seconds: float = 0.0
    paid_seconds: float = 0.0
    unpaid_seconds: float = 0.0
    unpaid_estimate: Decimal = ZERO

    def as_json(self) -> dict[str, Any]:
        """Rates as fractions (0..1, None without a denominator), minutes, euros as strings."""
        capacity = self.bays * self.seconds
        regulated = self.regulated_occupied_seconds
        return {
            "start": self.start.isoformat(),
            "occupancy_rate": round(self.occupied_seconds / capacity, 4) if capacity else None,
            "arrivals": self.arrivals,
            "departures": self.departures,
            "mean_dwell_minutes": round(self.dwell_seconds / self.departures / 60, 1)
            if self.departures else None,
            "regulated_occupied_minutes": round(regulated / 60, 1),
            "compliance_rate": round(self.paid_seconds / regulated, 4) if regulated else None,
            "unpaid_minutes": round(self.unpaid_seconds / 60, 1),
            "unpaid_estimate": str(self.unpaid_estimate),
        }  # fmt: skip


@dataclass
class _Stay:
    bay_id: int
    arrived_at: datetime
    left_at: datetime | None
    grace_until: datetime
    unpaid_seconds: float = 0.0
    unpaid_from: datetime | None = None


def _regulated_changes(
    regulated: hours.RegulatedHours, start: datetime, end: datetime
) -> list[datetime]:
    changes = []
    moment = start
    while (change := hours.next_change(regulated, moment)) is not None and change < end:
        changes.append(change.astimezone(UTC))
        moment = change
    return changes


def _zone_hours(
    zone: dict[str, Any], stays: list[_Stay], paid: list[tuple[int | None, datetime, datetime]],
    hour_starts: list[datetime], start: datetime, end: datetime,
) -> list[HourStats]:  # fmt: skip
    """Sweep the day's segments of constant state (see `occupancy_by_hour`)."""
    regulated_hours = hours.RegulatedHours.model_validate(zone["hours"])
    tariff = tariffs.Tariff.model_validate(zone["tariff"])
    bounds = [*hour_starts[1:], hour_starts[-1] + timedelta(hours=1)]
    stats = [
        HourStats(h, (following - h).total_seconds(), zone["bays"])
        for h, following in zip(hour_starts, bounds, strict=True)
    ]

    def hour_of(moment: datetime) -> int:
        return bisect.bisect_right(hour_starts, moment) - 1

    events: dict[datetime, list[tuple[str, Any]]] = defaultdict(list)
    for stay in stays:
        events[max(stay.arrived_at, start)].append(("stay+", stay))
        events[min(stay.left_at or end, end)].append(("stay-", stay))
        if start < stay.grace_until < end:
            events[stay.grace_until].append(("tick", None))
        if start <= stay.arrived_at < end:
            stats[hour_of(stay.arrived_at)].arrivals += 1
        if stay.left_at is not None and start <= stay.left_at < end:
            hour = stats[hour_of(stay.left_at)]
            hour.departures += 1
            hour.dwell_seconds += (stay.left_at - stay.arrived_at).total_seconds()
    for index, (_, paid_from, paid_until) in enumerate(paid):
        events[max(paid_from, start)].append(("paid+", index))
        events[min(paid_until, end)].append(("paid-", index))
    flips = _regulated_changes(regulated_hours, start, end)
    for moment in [*hour_starts, *flips, start, end]:
        events[moment].append(("tick", None))

    active_stays: dict[int, _Stay] = {}
    active_paid: set[int] = set()
    regulated = hours.is_regulated(regulated_hours, start)
    flipping = set(flips)
    moments = sorted(events)
    for moment, following in itertools.pairwise(moments):
        for kind, item in events[moment]:
            if kind == "stay+":
                active_stays[id(item)] = item
            elif kind == "stay-":
                active_stays.pop(id(item), None)
            elif kind == "paid+":
                active_paid.add(item)
            elif kind == "paid-":
                active_paid.discard(item)
        if moment in flipping:
            regulated = not regulated
        if moment >= end or following <= start:
            continue
        seconds = (following - moment).total_seconds()
        hour = stats[hour_of(moment)]
        hour.occupied_seconds += seconds * len(active_stays)
        if not regulated or not active_stays:
            continue
        hour.regulated_occupied_seconds += seconds * len(active_stays)
        paid_bays = {paid[i][0] for i in active_paid if paid[i][0] is not None}
        floating = sum(1 for i in active_paid if paid[i][0] is None)
        uncovered = sorted(
            (s for s in active_stays.values() if s.bay_id not in paid_bays),
            key=lambda s: s.arrived_at,
        )
        unpaid = [s for s in uncovered[floating:] if s.grace_until <= moment]
        hour.paid_seconds += seconds * (len(active_stays) - len(unpaid))
        hour.unpaid_seconds += seconds * len(unpaid)
        for stay in unpaid:
            stay.unpaid_seconds += seconds
            stay.unpaid_from = stay.unpaid_from or moment
    for stay in stays:
        if stay.unpaid_from is not None:
            due = tariffs.amount_due(tariff, stay.unpaid_seconds / 60)
            stats[hour_of(stay.unpaid_from)].unpaid_estimate += due
    return stats


def _day_total(stats: list[HourStats], start: datetime, end: datetime, bays: int) -> HourStats:
    total = HourStats(start, (end - start).total_seconds(), bays)
    for hour in stats:
        for name in ("occupied_seconds", "arrivals", "departures", "dwell_seconds",
                     "regulated_occupied_seconds", "paid_seconds", "unpaid_seconds",
                     "unpaid_estimate"):  # fmt: skip
            setattr(total, name, getattr(total, name) + getattr(hour, name))
    return total


def occupancy_by_hour(
    conn: psycopg.Connection, zone: str | None, day: date, tz: tzinfo,
    now: datetime | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Per active zone (or only `zone`) and local hour of `day`, from the sensors' stays:

    - occupancy rate: occupied bay-seconds / (bays x seconds of the hour);
    - arrivals (turnover) in the hour; departures and their mean dwell time (whole stay,
      counted in the hour the car left);
    - compliance rate: paid / regulated occupied bay-seconds. **Approximation**: the
      sessions do not say which car is which stay. At each instant a session naming a bay
      covers that bay's stay; sessions without a bay cover the other stays, the earliest
      arrived first; a paid bay left empty covers nobody. The first `grace_minutes` of a
      stay count as paid. This is an upper bound when drivers pay for the wrong zone;
    - unpaid estimate: each stay's unpaid regulated minutes of the day priced with the
      zone tariff (`tariffs.amount_due`, so minimum charge and steps apply per stay),
      counted in the hour its unpaid time began. A stay crossing midnight is priced per
      day. An estimate of lost revenue, not of fines.

    Hours are real hours (23 or 25 on DST days). Open stays and running sessions end at
    `now` (defaults to the current time). Bays without a working sensor count as free.
    """
    now = now or datetime.now(UTC)
    start, day_end = day_bounds(day, tz)
    end = max(start, min(day_end, now))
    hour_starts = []
    moment = start
    while moment < day_end:
        hour_starts.append(moment)
        moment += timedelta(hours=1)
    with conn.cursor(row_factory=dict_row) as cur:
        zones = cur.execute(_ZONES, {"zone": zone}).fetchall()
        ids = [z["id"] for z in zones]
        window = {"zones": ids, "start": start, "end": end}
        stay_rows = cur.execute(_STAYS, window).fetchall()
        paid_rows = cur.execute(_PAID, window).fetchall()
    result = []
    for z in zones:
        grace = timedelta(minutes=z["grace_minutes"])
        stays = [
            _Stay(r["bay_id"], r["arrived_at"], r["left_at"], r["arrived_at"] + grace)
            for r in stay_rows if r["zone_id"] == z["id"]
        ]  # fmt: skip
        paid = [
            (r["bay_id"], r["started_at"], r["paid_until"] or end)
            for r in paid_rows if r["zone_id"] == z["id"]
        ]  # fmt: skip
        stats = _zone_hours(z, stays, paid, hour_starts, start, end)
        result.append({
            "zone": z["code"], "bays": z["bays"],
            "day": _day_total(stats, start, day_end, z["bays"]).as_json(),
            "hours": [{"hour": h.start.astimezone(tz).strftime("%H:%M"), **h.as_json()}
                      for h in stats],
        })  # fmt: skip
    return result
