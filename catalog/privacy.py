"""Personal data of the catalogue: who drafted, amended or decided a town's quotes and
orders (users, by e-mail), which a person's erasure request replaces (core does it)."""

from __future__ import annotations

from core.privacy import Privacy, UserColumn

PRIVACY = Privacy(
    user_columns=(
        UserColumn("catalog_quotes", "created_by", "created_at"),
        UserColumn("catalog_quote_events", "actor", "at"),
        UserColumn("catalog_orders", "created_by", "created_at"),
    ),
)
