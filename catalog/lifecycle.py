"""A solution's lifecycle: which status may follow which, and who sees and orders what.

`proposed → certified → available → deprecated → withdrawn` is the planned path:

- proposed: submitted to the operator, seen by the operator only;
- certified: passed the operator's technical and legal checks, not on sale yet;
- available: on sale; buyers see it and order it;
- deprecated: end of sale announced: no new quote names it, but buyers still see it (the
  towns that run it) and it may come back to `available` (a supplier extends its support);
- withdrawn: final; hidden from buyers; quotes and orders keep the version they name.

Withdrawal is allowed from every other status, because it may be urgent (a product
recall, a supplier gone bankrupt) and must not wait for the planned path. Nothing goes
back towards `proposed`: a solution that needs re-certifying is changed (a new version)
while it stays where it is, or withdrawn and proposed again under a new slug.
"""

from __future__ import annotations

from typing import Literal, get_args

Status = Literal["proposed", "certified", "available", "deprecated", "withdrawn"]
STATUSES: tuple[Status, ...] = get_args(Status)

TRANSITIONS: dict[Status, frozenset[Status]] = {
    "proposed": frozenset({"certified", "withdrawn"}),
    "certified": frozenset({"available", "withdrawn"}),
    "available": frozenset({"deprecated", "withdrawn"}),
    "deprecated": frozenset({"available", "withdrawn"}),
    "withdrawn": frozenset(),
}

#: What a caller without catalog:manage (a buyer, a viewer) sees.
BUYER_VISIBLE: frozenset[Status] = frozenset({"available", "deprecated"})
#: What a quote may name (catalog.quotes checks it).
ORDERABLE: frozenset[Status] = frozenset({"available"})
#: Content can no longer change: a withdrawn solution is history.
FROZEN: frozenset[Status] = frozenset({"withdrawn"})


def allowed(current: Status, target: Status) -> bool:
    """`target` may follow `current`."""
    return target in TRANSITIONS[current]


def planned_path(target: Status) -> list[Status]:
    """The statuses a new (proposed) solution passes through to reach `target` along the
    planned path, `target` included (the catalogue loader's walk)."""
    return list(STATUSES[1 : STATUSES.index(target) + 1])
