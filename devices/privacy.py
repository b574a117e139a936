"""Personal data of the device registry: which technician sent a downlink or took a
device's photo (users, by e-mail), which a person's erasure request replaces (core does it)."""

from __future__ import annotations

from core.privacy import Privacy, UserColumn

PRIVACY = Privacy(
    user_columns=(
        UserColumn("downlinks", "created_by", "created_at"),
        UserColumn("device_photos", "uploaded_by", "uploaded_at"),
    ),
)
