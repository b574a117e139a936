"""Licence plates: one key however typed, the SIV display form, clear rejections."""

from __future__ import annotations

import pytest

from parking.plates import Plate, normalise_plate, plate_key


@pytest.mark.parametrize(
    "typed",
    [
        "AB-123-CD",
        "ab 123 cd",
        "AB123CD",
        "ab.123.cd",
        "  Ab-123 cD  ",
        "a b 1 2 3 c d",
        "AB1-23CD\n",
    ],
)
def test_siv_spellings_share_key_and_display(typed: str) -> None:
    assert normalise_plate(typed) == Plate(display="AB-123-CD", key="AB123CD")


@pytest.mark.parametrize(
    ("typed", "display", "key"),
    [
        ("1234 ab 75", "1234 AB 75", "1234AB75"),  # French FNI, before 2009
        ("1234   AB   75", "1234 AB 75", "1234AB75"),
        ("123-abc-45", "123-ABC-45", "123ABC45"),
        ("B-MW 1234", "B-MW 1234", "BMW1234"),  # German
        ("1-ABC-234", "1-ABC-234", "1ABC234"),  # Belgian
        ("ab 123 c", "AB 123 C", "AB123C"),  # not quite SIV: kept as typed
        ("AB", "AB", "AB"),
        ("ABCDEF123456", "ABCDEF123456", "ABCDEF123456"),
    ],
)
def test_other_plates_kept_as_typed(typed: str, display: str, key: str) -> None:
    assert normalise_plate(typed) == Plate(display=display, key=key)


def test_two_spellings_of_one_plate_match() -> None:
    assert plate_key("1234 AB 75") == plate_key("1234-ab-75")
    assert plate_key("ab-123-cd") == plate_key("AB 123 CD")
    assert plate_key("AB-123-CD") != plate_key("AB-123-CE")


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("--- ..", "no letter or digit"),
        ("A", "2 to 12 letters and digits, got 1"),
        ("A-", "2 to 12 letters and digits, got 1"),
        ("ABCDEF1234567", "2 to 12 letters and digits, got 13"),
        ("AB\x00123CD", "control character"),
        ("AB\t123CD", "control character"),
        ("AB-123-ÉD", "only letters A-Z, digits"),
        ("AB/123/CD", "only letters A-Z, digits"),
        ("AB_123_CD", "only letters A-Z, digits"),
        ("ＡＢ123CD", "only letters A-Z, digits"),  # full-width letters
    ],
)
def test_rejects_what_is_not_a_plate(typed: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalise_plate(typed)


def test_plate_key_rejects_like_normalise_plate() -> None:
    with pytest.raises(ValueError, match="empty"):
        plate_key("")
