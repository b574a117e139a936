"""Reading TR005 device labels: the examples published with the spec and The Things Stack's
test vectors, what a technician's scanner or copy-paste does to them, and every refusal with
the message the technician sees."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.qrcode import QrCodeError, Tr005Code, crc16_modbus, parse_tr005

# The example quoted from TR005 in The Things Stack's console code (and elsewhere).
SPEC_EXAMPLE = (
    "LW:D0:1122334455667788:AABBCCDDEEFF0011:AABB1122:OAABBCCDDEEFF:SYYWWNNNNNN:PFOOBAR:CAF2C"
)
# The Things Stack's TR005 test vector without extensions.
TTS_SIMPLE = "LW:D0:42FFFFFFFFFFFFFF:4242FFFFFFFFFFFF:42FFFF42"
MANDATORY = "LW:D0:70B3D57ED0000010:0018B20000000101:000AF8BE"


def _with_checksum(text: str) -> str:
    return f"{text}:C{crc16_modbus(text.encode()):04X}"


def _message(text: object) -> str:
    with pytest.raises(QrCodeError) as caught:
        parse_tr005(text)  # type: ignore[arg-type]
    return str(caught.value)


# --- the published examples ---------------------------------------------------------------


def test_crc16_modbus_gives_the_catalogue_check_value() -> None:
    # CRC-16/MODBUS of "123456789" is 0x4B37 in every CRC catalogue.
    assert crc16_modbus(b"123456789") == 0x4B37


def test_spec_example_with_every_extension_is_read_and_its_checksum_holds() -> None:
    assert parse_tr005(SPEC_EXAMPLE) == Tr005Code(
        join_eui="1122334455667788",
        dev_eui="aabbccddeeff0011",
        profile_id="aabb1122",
        vendor_id="aabb",
        vendor_profile_id="1122",
        owner_token="AABBCCDDEEFF",
        serial_number="YYWWNNNNNN",
        proprietary="FOOBAR",
        checksum="af2c",
        variant="tr005",
    )


def test_code_without_extensions_gives_the_mandatory_fields_only() -> None:
    code = parse_tr005(TTS_SIMPLE)
    assert (code.join_eui, code.dev_eui) == ("42ffffffffffffff", "4242ffffffffffff")
    assert (code.profile_id, code.vendor_id, code.vendor_profile_id) == (
        "42ffff42",
        "42ff",
        "ff42",
    )
    assert code.owner_token is code.serial_number is code.proprietary is code.checksum is None


def test_eui_fields_are_normalised_like_every_eui_in_civicsense() -> None:
    code = parse_tr005(MANDATORY)
    assert code.join_eui == "70b3d57ed0000010"
    assert code.dev_eui == "0018b20000000101"
    assert code.vendor_id == "000a"
    assert code.vendor_profile_id == "f8be"


def test_extensions_may_come_in_any_order() -> None:
    # The Things Stack writes C, O, S, P; commandus/tlns writes O, S, P, C.
    code = parse_tr005(f"{TTS_SIMPLE}:PPROPRIETARY:SSERIAL:O0102")
    assert (code.owner_token, code.serial_number, code.proprietary) == (
        "0102",
        "SERIAL",
        "PROPRIETARY",
    )


def test_checksum_first_is_verified_over_the_content_without_it() -> None:
    rest = ":O0102:SSERIAL"
    checksum = crc16_modbus(f"{TTS_SIMPLE}{rest}".encode())
    code = parse_tr005(f"{TTS_SIMPLE}:C{checksum:04X}{rest}")
    assert code.checksum == f"{checksum:04x}"
    assert code.serial_number == "SERIAL"


def test_checksum_written_without_leading_zeros_is_accepted() -> None:
    # the spec only says "hexadecimal format without the leading 0x"
    text = next(
        text
        for n in range(10_000)
        if crc16_modbus((text := f"{MANDATORY}:S{n:06d}").encode()) < 0x1000
    )
    value = crc16_modbus(text.encode())
    code = parse_tr005(f"{text}:C{value:X}")
    assert code.checksum == f"{value:04x}"


def test_empty_extensions_and_empty_fields_are_ignored() -> None:
    # The Things Stack's "EmptyExtensions" vector, and a trailing ':' from a copy
    assert parse_tr005(f"{TTS_SIMPLE}:O:S:P") == parse_tr005(TTS_SIMPLE)
    assert parse_tr005(f"{TTS_SIMPLE}::SSERIAL:").serial_number == "SERIAL"


# --- scanners and copy-paste --------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"  {SPEC_EXAMPLE}  ",
        f"{SPEC_EXAMPLE}\n",
        f"\t{SPEC_EXAMPLE}\r\n",
        f"\ufeff{SPEC_EXAMPLE}",
    ],
)
def test_surrounding_whitespace_from_a_scanner_is_ignored(text: str) -> None:
    assert parse_tr005(text) == parse_tr005(SPEC_EXAMPLE)


def test_lowercase_hex_is_accepted() -> None:
    code = parse_tr005(TTS_SIMPLE.replace("FF", "ff"))
    assert code == parse_tr005(TTS_SIMPLE)


def test_a_fully_lowercased_copy_still_passes_its_checksum() -> None:
    code = parse_tr005(SPEC_EXAMPLE.lower())
    assert code.dev_eui == "aabbccddeeff0011"
    assert code.checksum == "af2c"
    assert code.owner_token == "aabbccddeeff"  # text extensions keep the case they were given


# --- the TR005 drafts, as The Things Stack still reads them ---------------------------------


def test_draft_2_with_extensions_is_read() -> None:
    code = parse_tr005(
        "URN:LW:DP:42FFFFFFFFFFFFFF:4242FFFFFFFFFFFF:42FFFF42:%V0102%SSERIAL%PPROPRIETARY"
    )
    assert code == Tr005Code(
        join_eui="42ffffffffffffff",
        dev_eui="4242ffffffffffff",
        profile_id="42ffff42",
        vendor_id="42ff",
        vendor_profile_id="ff42",
        owner_token="0102",
        serial_number="SERIAL",
        proprietary="PROPRIETARY",
        checksum=None,
        variant="tr005draft2",
    )


def test_draft_2_reads_an_escaped_percent_as_the_separator() -> None:
    code = parse_tr005("URN:LW:DP:42FFFFFFFFFFFFFF:4242FFFFFFFFFFFF:42FFFF42:%25VABCD")
    assert code.owner_token == "ABCD"


def test_draft_3_with_extensions_is_read() -> None:
    code = parse_tr005(
        "URN:DEV:LW:42FFFFFFFFFFFFFF_4242FFFFFFFFFFFF_42FFFF42_V0102_SSERIAL_PPROPRIETARY"
    )
    assert (code.variant, code.owner_token, code.serial_number, code.proprietary) == (
        "tr005draft3",
        "0102",
        "SERIAL",
        "PROPRIETARY",
    )


def test_draft_3_label_of_a_real_device_gives_its_validation_code_without_the_v() -> None:
    # The Things Stack issue #6059: the owner token is D53FFFFF, not VD53FFFFF
    code = parse_tr005("URN:DEV:LW:70B3D57ED0000000_0004A31000FFFFFF_00000000_VD53FFFFF")
    assert (code.join_eui, code.dev_eui, code.owner_token) == (
        "70b3d57ed0000000",
        "0004a31000ffffff",
        "D53FFFFF",
    )


def test_draft_empty_extensions_are_ignored() -> None:
    code = parse_tr005("URN:DEV:LW:42FFFFFFFFFFFFFF_4242FFFFFFFFFFFF_42FFFF42_V_S_P")
    assert code.owner_token is code.serial_number is code.proprietary is None


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n", "\ufeff"])
def test_empty_scan_is_refused(text: str) -> None:
    assert "empty" in _message(text)


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "https://www.milesight-iot.com/?SN=6136D19250250007",
        "24E124136C225107",
        "LWD0:1122334455667788:AABBCCDDEEFF0011:AABB1122",
        "XX:D0:1122334455667788:AABBCCDDEEFF0011:AABB1122",
        "URN:LW:XX:1122334455667788:AABBCCDDEEFF0011:AABB1122",
        "LW",
        "LW:",
        "LW:garbage",
        "\x00\x01\x02",
    ],
)
def test_text_that_is_not_a_tr005_code_is_refused_as_such(text: str) -> None:
    assert _message(text).startswith("not a LoRaWAN TR005 QR code")


def test_another_schema_version_is_refused_by_name() -> None:
    message = _message("LW:D1:1122334455667788:AABBCCDDEEFF0011:AABB1122")
    assert message == "unsupported TR005 version 'D1': only 'D0' is known"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "LW:D0:42FFFFFFFF:4242FFFFFFFFFFFF:42FFFF42",
            "JoinEUI must be 16 hexadecimal digits: it has 10",
        ),
        (
            "LW:D0:42FFFFFFFFFFFFFF00:4242FFFFFFFFFFFF:42FFFF42",
            "JoinEUI must be 16 hexadecimal digits: it has 18",
        ),
        (
            "LW:D0:42FFFFFFFFFFFFFF:4242FFFFFFFFFF:42FFFF42",
            "DevEUI must be 16 hexadecimal digits: it has 14",
        ),
        (
            "LW:D0:42FFFFFFFFFFFFFF:4242FFFFFFFFFFFFFF:42FFFF42",
            "DevEUI must be 16 hexadecimal digits: it has 18",
        ),
        (
            "LW:D0:42FFFFFFFFFFFFFF:4242FFFFFFFFFFFG:42FFFF42",
            "DevEUI must be 16 hexadecimal digits: 'G' is not a hexadecimal digit",
        ),
        (
            "LW:D0:42FF-FFFF-FFFF-FFF:4242FFFFFFFFFFFF:42FFFF42",
            "JoinEUI must be 16 hexadecimal digits: '-' is not a hexadecimal digit",
        ),
        (
            "LW:D0::4242FFFFFFFFFFFF:42FFFF42",
            "JoinEUI must be 16 hexadecimal digits: it is empty",
        ),
    ],
)
def test_malformed_eui_is_refused_naming_the_field(text: str, expected: str) -> None:
    assert _message(text) == expected


@pytest.mark.parametrize(
    ("profile", "detail"),
    [
        ("42FFFF42AABB", "it has 12"),  # The Things Stack's Invalid/ProdID vector
        ("42FFFF4", "it has 7"),
        ("42FFFZ42", "'Z' is not a hexadecimal digit"),
    ],
)
def test_malformed_profile_id_is_refused(profile: str, detail: str) -> None:
    message = _message(f"LW:D0:42FFFFFFFFFFFFFF:4242FFFFFFFFFFFF:{profile}")
    assert message == (
        f"ProfileID must be 8 hexadecimal digits (VendorID + VendorProfileID): {detail}"
    )


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("LW:D0", "JoinEUI"),
        ("LW:D0:42FFFFFFFFFFFFFF", "DevEUI"),
        ("LW:D0:42FFFFFFFFFFFFFF:4242FFFFFFFFFFFF", "ProfileID"),
    ],
)
def test_incomplete_code_names_the_missing_field(text: str, missing: str) -> None:
    assert _message(text).startswith(f"incomplete TR005 QR code: the {missing} is missing")


@pytest.mark.parametrize("letter", ["X", "V", "1", "%"])
def test_unknown_extension_is_refused(letter: str) -> None:
    message = _message(f"{TTS_SIMPLE}:SSERIAL:{letter}FOO")
    assert message.startswith(f"unknown extension {letter!r}")


@pytest.mark.parametrize(
    ("extensions", "letter", "name"),
    [
        (":SONE:STWO", "S", "SerNum"),
        (":PFOO:O01:PBAR", "P", "Proprietary"),
        (":OAA:oBB", "O", "OwnerToken"),
    ],
)
def test_duplicated_extension_is_refused(extensions: str, letter: str, name: str) -> None:
    message = _message(f"{TTS_SIMPLE}{extensions}")
    assert message == f"extension {letter!r} ({name}) appears more than once"


def test_duplicated_checksum_is_refused() -> None:
    text = _with_checksum(MANDATORY)
    assert "appears more than once" in _message(f"{text}:CAF2C")


@pytest.mark.parametrize(
    "text",
    [
        SPEC_EXAMPLE.replace("CAF2C", "CAF2D"),  # checksum mistyped
        SPEC_EXAMPLE.replace("AABBCCDDEEFF0011", "AABBCCDDEEFF0017"),  # DevEUI misread
        SPEC_EXAMPLE.replace("SYYWW", "SYYVW"),  # serial number misread
        SPEC_EXAMPLE.replace(":PFOOBAR", ""),  # a field lost
    ],
)
def test_checksum_that_does_not_match_is_refused(text: str) -> None:
    assert _message(text).startswith("checksum does not match")


@pytest.mark.parametrize("checksum", ["CHECKSUM", "AF2C0", "AFZC"])
def test_checksum_that_is_not_four_hex_digits_is_refused(checksum: str) -> None:
    # "CHECKSUM" is The Things Stack's placeholder, which it does not verify
    message = _message(f"{TTS_SIMPLE}:O0102:C{checksum}")
    assert message.startswith("the checksum must be 4 hexadecimal digits")


@pytest.mark.parametrize(("value", "shown"), [("SÉRIE", "'É'"), ("A\tB", "'\\t'")])
def test_character_a_qr_label_cannot_hold_is_refused(value: str, shown: str) -> None:
    message = _message(f"{TTS_SIMPLE}:S{value}")
    assert message == f"the code contains a character a TR005 QR code cannot hold: {shown}"


def test_text_longer_than_any_qr_code_is_refused() -> None:
    assert _message(f"{TTS_SIMPLE}:P{'A' * 5000}").startswith("too long to be a TR005 QR code")


def test_draft_value_with_a_character_the_draft_forbids_is_refused() -> None:
    draft2 = "URN:LW:DP:42FFFFFFFFFFFFFF:4242FFFFFFFFFFFF:42FFFF42:%P#_"
    draft3 = "URN:DEV:LW:42FFFFFFFFFFFFFF_4242FFFFFFFFFFFF_42FFFF42_P#"
    assert (
        _message(draft2)
        == "Proprietary contains a character a TR005 draft code does not allow: '#'"
    )
    assert (
        _message(draft3)
        == "Proprietary contains a character a TR005 draft code does not allow: '#'"
    )


def test_draft_with_a_missing_field_or_unknown_extension_is_refused() -> None:
    assert _message("URN:DEV:LW:42FFFFFFFFFFFFFF_4242FFFFFFFFFFFF").startswith(
        "incomplete TR005 draft QR code"
    )
    assert _message("URN:DEV:LW:42FFFFFFFF_4242FFFFFFFFFFFF_42FFFF42").startswith(
        "JoinEUI must be 16 hexadecimal digits"
    )
    assert _message("URN:DEV:LW:42FFFFFFFFFFFFFF_4242FFFFFFFFFFFF_42FFFF42_XFOO").startswith(
        "unknown extension 'X'"
    )
    assert _message("URN:DEV:LW:42FFFFFFFFFFFFFF_4242FFFFFFFFFFFF_42FFFF42_SA_SB").endswith(
        "appears more than once"
    )


@pytest.mark.parametrize("value", [None, b"LW:D0:", 42])
def test_content_that_is_not_text_is_refused(value: object) -> None:
    assert _message(value) == "the QR code content must be text"


def test_the_error_is_a_value_error_and_the_result_cannot_be_changed() -> None:
    assert issubclass(QrCodeError, ValueError)
    code = parse_tr005(SPEC_EXAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        code.dev_eui = "0000000000000000"  # type: ignore[misc]


# --- properties -----------------------------------------------------------------------------

_HEX = "0123456789ABCDEF"
_TR005_ALPHABET = _HEX + "OSPCVXLWDURN:_%$*+-./ \t\néß\x00"


def _hex(digits: int) -> st.SearchStrategy[str]:
    return st.text(_HEX, min_size=digits, max_size=digits)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(),
        st.text(_TR005_ALPHABET),
        st.sampled_from(["LW:D0:", "lw:d0:", "URN:LW:DP:", "URN:DEV:LW:", "LW:"]).flatmap(
            lambda prefix: st.text(_TR005_ALPHABET).map(lambda rest: prefix + rest)
        ),
    )
)
def test_any_text_gives_a_code_or_a_qr_code_error_and_nothing_else(text: str) -> None:
    try:
        code = parse_tr005(text)
    except QrCodeError as error:
        assert str(error)
    else:
        assert len(code.join_eui) == len(code.dev_eui) == 16
        assert code.profile_id == code.vendor_id + code.vendor_profile_id


_VALUE = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-./", min_size=1, max_size=12)


@settings(max_examples=200)
@given(
    join_eui=_hex(16),
    dev_eui=_hex(16),
    profile=_hex(8),
    extensions=st.dictionaries(st.sampled_from("OSP"), _VALUE),
    order=st.randoms(use_true_random=False),
)
def test_generated_codes_with_a_checksum_read_back_whatever_the_order(
    join_eui: str, dev_eui: str, profile: str, extensions: dict[str, str], order: random.Random
) -> None:
    fields = [f"{letter}{value}" for letter, value in extensions.items()]
    order.shuffle(fields)
    text = _with_checksum(":".join(["LW", "D0", join_eui, dev_eui, profile, *fields]))
    code = parse_tr005(text)
    assert (code.join_eui, code.dev_eui, code.profile_id) == (
        join_eui.lower(),
        dev_eui.lower(),
        profile.lower(),
    )
    assert code.owner_token == extensions.get("O")
    assert code.serial_number == extensions.get("S")
    assert code.proprietary == extensions.get("P")


@settings(max_examples=300)
@given(
    join_eui=_hex(16),
    dev_eui=_hex(16),
    profile=_hex(8),
    position=st.integers(0, 39),
    shift=st.integers(1, 15),
)
def test_one_misread_hex_digit_is_always_caught_by_the_checksum(
    join_eui: str, dev_eui: str, profile: str, position: int, shift: int
) -> None:
    hex_part = join_eui + dev_eui + profile
    wrong = _HEX[(_HEX.index(hex_part[position]) + shift) % 16]
    misread = hex_part[:position] + wrong + hex_part[position + 1 :]
    text = _with_checksum(f"LW:D0:{join_eui}:{dev_eui}:{profile}")
    checksum = text.rsplit(":", 1)[1]
    corrupted = f"LW:D0:{misread[:16]}:{misread[16:32]}:{misread[32:]}:{checksum}"
    with pytest.raises(QrCodeError, match="checksum does not match"):
        parse_tr005(corrupted)
