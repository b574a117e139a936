"""Read the LoRa Alliance TR005 "LoRaWAN Device Identification QR Codes" on device labels.

`parse_tr005(text)` returns a `Tr005Code` or raises `QrCodeError` (a `ValueError`) with a
message a technician can act on. Hex fields come back lowercase, as civicsense stores EUIs
everywhere; OwnerToken, SerNum and Proprietary keep their case.

The final format (TR005, SchemaID D0)
-------------------------------------
``LW:D0:<JoinEUI>:<DevEUI>:<ProfileID>[:<extension>]...``, fields separated by ``:``:

- ``LW`` then the schema ``D0``; another two-character schema is refused as an unsupported
  version.
- JoinEUI and DevEUI: 16 hexadecimal digits each; ProfileID: 8 hexadecimal digits, the
  VendorID (4) followed by the VendorProfileID (4). The Things Stack's TR005 parser
  (TheThingsNetwork/lorawan-stack, ``LoRaAllianceTR005`` under ``pkg/qrcode``, and its tests)
  reads exactly these five fields and refuses shorter EUIs or a longer ProfileID.
- Extensions, each one field whose first letter names it: ``O`` OwnerToken, ``S`` SerNum,
  ``P`` Proprietary, ``C`` CheckSum (letters from the same parser and from the example
  quoted from TR005 in The Things Stack's console code,
  ``LW:D0:1122334455667788:AABBCCDDEEFF0011:AABB1122:OAABBCCDDEEFF:SYYWWNNNNNN:PFOOBAR:CAF2C``).
  The Things Stack accepts them in any order (its generator writes C first, commandus/tlns's
  writes it last), so any order is accepted here. An extension letter with nothing after it
  and empty fields are ignored, as The Things Stack does. Stricter than The Things Stack,
  which skips unknown letters and keeps the last of repeated ones: an unknown letter is
  refused, and so is a letter given twice, since which value to believe would be a guess.
  Extension values are the printable ASCII a QR code label carries, without ``:`` (the
  separator).

The checksum (verified)
-----------------------
TR005 lines 210-214, as quoted in The Things Stack issue #5289 ("Validate TR005 QR Code
checksum"): the Checksum "is generated using the CRC-16-MODBUS [CRC] of the full QR content
except the Checksum field itself, and presented in hexadecimal format without the leading
'0x'". CRC-16/MODBUS is polynomial 0x8005 reflected (0xA001), initial value 0xFFFF, no final
XOR. The example above confirms where the field boundary falls: CRC-16/MODBUS of the
ASCII text before ``:CAF2C`` (the ``:`` excluded) is 0xAF2C, while the cuts keeping the ``:`` or
the ``C`` give other values. commandus/tlns
(``lorawan/storage/serialization/urn-helper.cpp``, ``lorawan/helper/crc-helper.cpp``) computes
its ``:C`` field the same way, over the upper-cased text, zero-padded to 4 digits. So the
checksum is computed here over the text with its ``:C…`` field removed, and accepted if it
matches that text as scanned or upper-cased (a copy whose hex was lower-cased still checks);
1 to 4 hexadecimal digits are accepted since the spec does not say it is zero-padded.

Draft formats
-------------
The Things Stack still parses the two TR005 drafts (formats ``tr005draft2`` and
``tr005draft3``, marked deprecated; ``lora_alliance_tr005d2.go`` / ``…d3.go``), so they are
accepted too, without a checksum (they have none), their DeviceValidationCode ``V`` read as
the owner token as The Things Stack does:

- draft 2: ``URN:LW:DP:<JoinEUI>:<DevEUI>:<ProdID>[:%V…%S…%P…]`` (``%25`` read as ``%``), values
  in ``0-9 A-Z $ * + - . /``;
- draft 3: ``URN:DEV:LW:<JoinEUI>_<DevEUI>_<ProdID>[_V…][_S…][_P…]``, values in ``0-9 A-Z``.

Leniency for text typed or pasted rather than scanned: surrounding whitespace (and a byte
order mark) is ignored, and letters may be lowercase anywhere (``lw:d0:…``, hex, extension
letters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .models import normalise_eui

__all__ = ["QrCodeError", "Tr005Code", "crc16_modbus", "parse_tr005"]

# A QR code holds at most 4,296 alphanumeric characters (version 40, level L).
MAX_LENGTH = 4296

_NOT_TR005 = "not a LoRaWAN TR005 QR code (its text should start with 'LW:D0:')"
_HEX = re.compile(r"[0-9A-Fa-f]+")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_DRAFT2_VALUE = re.compile(r"[0-9A-Za-z$*+\-./]*")
_DRAFT3_VALUE = re.compile(r"[0-9A-Za-z]*")

_NAMES = {
    "O": "OwnerToken",
    "S": "SerNum",
    "P": "Proprietary",
    "C": "CheckSum",
    "V": "DeviceValidationCode",
}


class QrCodeError(ValueError):
    """The scanned text is not a usable TR005 QR code; the message says why."""


@dataclass(frozen=True, slots=True)
class Tr005Code:
    """What a TR005 device label says. Hex fields are lowercase."""

    join_eui: str  # 16 hex digits
    dev_eui: str  # 16 hex digits
    profile_id: str  # 8 hex digits: vendor_id + vendor_profile_id
    vendor_id: str  # 4 hex digits, assigned by the LoRa Alliance
    vendor_profile_id: str  # 4 hex digits, the vendor's own
    owner_token: str | None = None
    serial_number: str | None = None
    proprietary: str | None = None
    checksum: str | None = None  # 4 hex digits when present; verified
    variant: str = "tr005"  # or "tr005draft2" / "tr005draft3", as The Things Stack names them


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS: polynomial 0x8005 reflected, initial value 0xFFFF, no final XOR."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def parse_tr005(text: str) -> Tr005Code:
    """Parse the text of a TR005 QR code (final format or one of the two drafts)."""
    if not isinstance(text, str):
        raise QrCodeError("the QR code content must be text")
    text = text.strip().lstrip("\ufeff").strip()
    if not text:
        raise QrCodeError("the QR code is empty: nothing was scanned")
    if len(text) > MAX_LENGTH:
        raise QrCodeError(f"too long to be a TR005 QR code ({len(text)} characters)")
    head = text[:11].upper() if text[:11].isascii() else ""
    if head.startswith("URN:LW:DP:"):
        return _draft2(text)
    if head.startswith("URN:DEV:LW:"):
        return _draft3(text)
    fields = text.split(":")
    if fields[0].upper() != "LW" or len(fields) < 2:
        raise QrCodeError(_NOT_TR005)
    version = fields[1]
    if version.upper() != "D0":
        if re.fullmatch(r"[0-9A-Za-z]{2}", version):
            raise QrCodeError(f"unsupported TR005 version {version!r}: only 'D0' is known")
        raise QrCodeError(_NOT_TR005)
    _printable(text)
    join_eui, dev_eui, profile = _mandatory(fields[2:5])
    extensions, checksum_at = _extensions(fields)
    checksum = extensions.get("C")
    if checksum is not None:
        _verify_checksum(fields, checksum_at, checksum)
    return _code(
        join_eui,
        dev_eui,
        profile,
        owner_token=extensions.get("O"),
        serial_number=extensions.get("S"),
        proprietary=extensions.get("P"),
        checksum=checksum.lower().zfill(4) if checksum is not None else None,
        variant="tr005",
    )


def _mandatory(fields: list[str]) -> tuple[str, str, str]:
    """JoinEUI, DevEUI, ProfileID, checked; fewer than three fields is an incomplete code."""
    for position, name in enumerate(("JoinEUI", "DevEUI", "ProfileID")):
        if len(fields) <= position:
            raise QrCodeError(
                f"incomplete TR005 QR code: the {name} is missing "
                "(expected JoinEUI, DevEUI and ProfileID after 'LW:D0:')"
            )
    join_eui = _hex_field("JoinEUI", fields[0], 16)
    dev_eui = _hex_field("DevEUI", fields[1], 16)
    profile = _hex_field("ProfileID", fields[2], 8, " (VendorID + VendorProfileID)")
    return join_eui, dev_eui, profile


def _extensions(fields: list[str]) -> tuple[dict[str, str], int]:
    """The D0 extensions by letter, and the index of the CheckSum field (0 if none)."""
    found: dict[str, str] = {}
    checksum_at = 0
    for index in range(5, len(fields)):
        field = fields[index]
        if not field:
            continue  # '::' or a trailing ':'
        letter, value = field[0].upper(), field[1:]
        if letter not in ("O", "S", "P", "C"):
            raise QrCodeError(
                f"unknown extension {field[0]!r}: a TR005 code only has "
                "O (OwnerToken), S (SerNum), P (Proprietary) and C (CheckSum)"
            )
        if not value:
            continue
        if letter in found:
            raise QrCodeError(f"extension {letter!r} ({_NAMES[letter]}) appears more than once")
        found[letter] = value
        if letter == "C":
            checksum_at = index
    return found, checksum_at


def _verify_checksum(fields: list[str], index: int, checksum: str) -> None:
    if len(checksum) > 4 or not _HEX.fullmatch(checksum):
        raise QrCodeError(f"the checksum must be 4 hexadecimal digits, not {_shown(checksum)}")
    content = ":".join(fields[:index] + fields[index + 1 :])
    expected = int(checksum, 16)
    candidates = {crc16_modbus(content.encode("ascii")), crc16_modbus(content.upper().encode())}
    if expected not in candidates:
        raise QrCodeError(
            "checksum does not match: the code was probably misread or mistyped, "
            "scan it again or check every character"
        )


def _draft2(text: str) -> Tr005Code:
    parts = text[len("URN:LW:DP:") :].split(":", 3)
    join_eui, dev_eui, profile = _draft_mandatory(parts, "URN:LW:DP:")
    values: dict[str, str] = {}
    if len(parts) == 4:
        values = _draft_extensions(parts[3].replace("%25", "%").split("%"), _DRAFT2_VALUE)
    return _draft_code(join_eui, dev_eui, profile, values, "tr005draft2")


def _draft3(text: str) -> Tr005Code:
    parts = text[len("URN:DEV:LW:") :].split("_")
    join_eui, dev_eui, profile = _draft_mandatory(parts, "URN:DEV:LW:")
    values = _draft_extensions(parts[3:], _DRAFT3_VALUE)
    return _draft_code(join_eui, dev_eui, profile, values, "tr005draft3")


def _draft_mandatory(parts: list[str], prefix: str) -> tuple[str, str, str]:
    if len(parts) < 3:
        raise QrCodeError(
            f"incomplete TR005 draft QR code: expected JoinEUI, DevEUI and ProfileID after "
            f"{prefix!r}"
        )
    join_eui = _hex_field("JoinEUI", parts[0], 16)
    dev_eui = _hex_field("DevEUI", parts[1], 16)
    profile = _hex_field("ProfileID", parts[2], 8, " (VendorID + VendorProfileID)")
    return join_eui, dev_eui, profile


def _draft_extensions(segments: list[str], allowed: re.Pattern[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for segment in segments:
        if not segment:
            continue
        letter, value = segment[0].upper(), segment[1:]
        if letter not in ("V", "S", "P"):
            raise QrCodeError(
                f"unknown extension {segment[0]!r}: a TR005 draft code only has "
                "V (DeviceValidationCode), S (SerNum) and P (Proprietary)"
            )
        if not value:
            continue
        if not allowed.fullmatch(value):
            bad = next(c for c in value if not allowed.fullmatch(c))
            raise QrCodeError(
                f"{_NAMES[letter]} contains a character a TR005 draft code does not allow: {bad!r}"
            )
        if letter in found:
            raise QrCodeError(f"extension {letter!r} ({_NAMES[letter]}) appears more than once")
        found[letter] = value
    return found


def _draft_code(
    join_eui: str, dev_eui: str, profile: str, values: dict[str, str], variant: str
) -> Tr005Code:
    return _code(
        join_eui,
        dev_eui,
        profile,
        owner_token=values.get("V"),
        serial_number=values.get("S"),
        proprietary=values.get("P"),
        checksum=None,
        variant=variant,
    )


def _code(
    join_eui: str,
    dev_eui: str,
    profile: str,
    *,
    owner_token: str | None,
    serial_number: str | None,
    proprietary: str | None,
    checksum: str | None,
    variant: str,
) -> Tr005Code:
    return Tr005Code(
        join_eui=normalise_eui(join_eui),
        dev_eui=normalise_eui(dev_eui),
        profile_id=profile,
        vendor_id=profile[:4],
        vendor_profile_id=profile[4:],
        owner_token=owner_token,
        serial_number=serial_number,
        proprietary=proprietary,
        checksum=checksum,
        variant=variant,
    )


def _hex_field(name: str, value: str, digits: int, what: str = "") -> str:
    """`value` as `digits` lowercase hex digits, or a QrCodeError naming the field."""
    if len(value) == digits and _HEX.fullmatch(value):
        return value.lower()
    if not value:
        detail = "it is empty"
    elif not _HEX.fullmatch(value):
        bad = next(c for c in value if not _HEX.fullmatch(c))
        detail = f"{bad!r} is not a hexadecimal digit"
    else:
        detail = f"it has {len(value)}"
    raise QrCodeError(f"{name} must be {digits} hexadecimal digits{what}: {detail}")


def _printable(text: str) -> None:
    if not _PRINTABLE.fullmatch(text):
        bad = next(c for c in text if not _PRINTABLE.fullmatch(c))
        raise QrCodeError(f"the code contains a character a TR005 QR code cannot hold: {bad!r}")


def _shown(value: str) -> str:
    return repr(value if len(value) <= 20 else value[:20] + "…")
