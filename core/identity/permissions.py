"""Named permissions and the roles that bundle them.

Roles inherit downward: `platform_admin` ⊇ `tenant_admin` ⊇ (`facility_manager`,
`enforcement_agent`, `technician`, `buyer`) ⊇ `viewer`. A role's level says whom its
holder may manage: an administrator manages users whose roles are at or below its level.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PERMISSIONS: dict[str, str] = {
    "tenants:read": "see its own municipality",
    "tenants:manage": "create and edit municipalities (operator)",
    "users:read": "list the municipality's users",
    "users:manage": "create, edit and deactivate users at or below one's level",
    "apikeys:manage": "create and revoke API keys of the municipality",
    "providers:manage": "register payment providers and their webhook secrets",
    "audit:read": "read the audit trail",
    "devices:read": "see devices and their health",
    "devices:write": "register, place, edit and decommission devices",
    "readings:read": "read decoded sensor readings",
    "parking:read": "see zones, bays and occupancy",
    "parking:enforce": "control map, plate check, record enforcement actions",
    "parking:manage": "zones, tariffs and bays",
    "parking:sessions": "start, extend and stop payment sessions (town's own payment service)",
    "alerts:read": "see alerts and incidents",
    "alerts:manage": "alert rules; acknowledge alerts",
    "incidents:manage": "open, assign and work on incidents",
    "catalog:read": "browse the solution catalogue",
    "catalog:order": "request quotes and place orders",
    "catalog:manage": "edit the catalogue and answer quotes (operator)",
}


@dataclass(frozen=True)
class Role:
    """A bundle of permissions, with the roles it includes."""

    name: str
    level: int
    includes: tuple[str, ...]
    grants: tuple[str, ...]


_ROLES = (
    Role("viewer", 0, (), ("tenants:read", "devices:read", "readings:read", "parking:read",
                           "alerts:read", "catalog:read")),
    Role("facility_manager", 1, ("viewer",), ("alerts:manage", "incidents:manage")),
    Role("enforcement_agent", 1, ("viewer",), ("parking:enforce",)),
    Role("technician", 1, ("viewer",), ("devices:write", "incidents:manage")),
    Role("buyer", 1, ("viewer",), ("catalog:order",)),
    Role("tenant_admin", 2,
         ("facility_manager", "enforcement_agent", "technician", "buyer"),
         ("users:read", "users:manage", "apikeys:manage", "providers:manage", "audit:read",
          "parking:manage", "parking:sessions")),
    Role("platform_admin", 3, ("tenant_admin",), ("tenants:manage", "catalog:manage")),
)  # fmt: skip
ROLES: dict[str, Role] = {role.name: role for role in _ROLES}

# Roles whose holders must use a TOTP second factor.
ADMIN_ROLES = frozenset({"platform_admin", "tenant_admin"})


def role_permissions(name: str) -> frozenset[str]:
    """Everything role `name` allows, inherited roles included."""
    role = ROLES[name]
    inherited = (role_permissions(included) for included in role.includes)
    return frozenset(role.grants).union(*inherited)


def permissions_of(roles: Iterable[str], grants: Iterable[str] = ()) -> frozenset[str]:
    """What a user holding `roles`, plus per-user `grants`, may do."""
    return frozenset(grants).union(*(role_permissions(r) for r in roles if r in ROLES))


def level_of(roles: Iterable[str]) -> int:
    """The highest level among `roles` (-1 for none)."""
    return max((ROLES[r].level for r in roles if r in ROLES), default=-1)
