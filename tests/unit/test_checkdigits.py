"""exporter.terminology.checkdigits: Verhoeff (SNOMED CT) and Mod 10 (LOINC) check digits, offline."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.terminology.checkdigits import (
    LOINC_BAD_CHECK_DIGITS,
    kvid10_check_digit,
    kvid10_ok,
    loinc_check_digit,
    loinc_check_digit_ok,
    pzn_check_digit,
    pzn_ok,
    sctid_partition,
    snomed_verhoeff_ok,
    verhoeff_check_digit,
)

# SNOMED CT concept ids used in this project or well known (all published SCTIDs).
GOOD_SCTIDS = [
    "138875005",    # SNOMED CT Concept (root)
    "706689003",    # Application program software
    "423100009",    # Results section
    "1184593002",   # Vital sign document section
    "424836000",    # Assessment section
    "25064002",     # Headache
    "422587007",    # Nausea
    "84229001",     # Fatigue
    "404640003",    # Dizziness
    "193462001",    # Insomnia
    "35489007",     # Depressive disorder
    "197480006",    # Anxiety disorder
    "900000000000207008",  # SNOMED CT core module (18 digits, short format)
    "1084991000168108",    # an Australian extension concept (long format: namespace 1000168, partition 10)
]

BAD_SCTIDS = [
    "706689004",    # wrong check digit
    "706698003",    # adjacent digits swapped
    "25064003",
    "1184593003",
    "070668900",    # leading zero
    "12345",        # too short (min. 6 digits)
    "1234567890123456789",  # too long (max. 18 digits)
    "70668900a",
    "706 689003",
    "",
]

GOOD_LOINC = [
    "29463-7", "8302-2", "8867-4", "85354-9", "8480-6", "8462-4", "15074-8", "2339-0",
    "44261-6", "70274-6", "53576-5", "11450-4", "44249-1", "69737-5",
    "LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9",  # answers (OpenMRS variant of Mod 10)
    "LL358-3",                                     # answer list
    "LA33-6", "LA32-8",                            # Yes / No
]

BAD_LOINC = [
    "29463-6", "8302-3", "85345-9", "44261-5", "LA6568-4", "LL358-2",
    "29463", "29463-", "-7", "29463-77", "29463 -7", "LX6568-5", "12345678-0", "",
]


@pytest.mark.parametrize("digits, check", [
    ("236", 3), ("12345", 1), ("142857", 0), ("123456789012", 0), ("8473643095483728456789", 2),
])
def test_verhoeff_reference_vectors(digits: str, check: int) -> None:
    assert verhoeff_check_digit(digits) == check


@pytest.mark.parametrize("sctid", GOOD_SCTIDS)
def test_known_good_sctids(sctid: str) -> None:
    assert snomed_verhoeff_ok(sctid)


@pytest.mark.parametrize("sctid", BAD_SCTIDS)
def test_known_bad_sctids(sctid: str) -> None:
    assert not snomed_verhoeff_ok(sctid)


def test_non_strings_are_not_sctids() -> None:
    assert not snomed_verhoeff_ok(706689003)  # type: ignore[arg-type]
    assert not snomed_verhoeff_ok(None)  # type: ignore[arg-type]


def test_sctid_partition() -> None:
    assert sctid_partition("706689003") == "00"
    assert sctid_partition("900000000000207008") == "00"
    assert sctid_partition("1084991000168108") == "10"
    assert sctid_partition("706689004") is None


@pytest.mark.parametrize("code", GOOD_LOINC)
def test_known_good_loinc(code: str) -> None:
    assert loinc_check_digit_ok(code)


@pytest.mark.parametrize("code", BAD_LOINC)
def test_known_bad_loinc(code: str) -> None:
    assert not loinc_check_digit_ok(code)


def test_loinc_users_guide_example() -> None:
    """LOINC Users' Guide 12 C: the Mod 10 check digit of 12345 is 5."""
    assert loinc_check_digit("12345") == 5


@pytest.mark.parametrize("code", sorted(LOINC_BAD_CHECK_DIGITS))
def test_loinc_codes_published_with_wrong_check_digits_fail(code: str) -> None:
    assert not loinc_check_digit_ok(code)


@pytest.mark.parametrize("bad", ["", "12a", "１２３", " 1"])
def test_helpers_reject_malformed_input(bad: str) -> None:
    with pytest.raises(ValueError):
        verhoeff_check_digit(bad)
    if not bad.strip().isalnum() or not bad.isascii():
        with pytest.raises(ValueError):
            loinc_check_digit(bad)


digit_strings = st.text(alphabet="0123456789", min_size=5, max_size=17).filter(lambda s: s[0] != "0")


@given(digit_strings)
def test_appended_verhoeff_digit_validates(body: str) -> None:
    assert snomed_verhoeff_ok(body + str(verhoeff_check_digit(body)))


@given(digit_strings, st.data())
def test_verhoeff_catches_every_single_digit_error(body: str, data: st.DataObject) -> None:
    sctid = body + str(verhoeff_check_digit(body))
    pos = data.draw(st.integers(min_value=1, max_value=len(sctid) - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != sctid[pos]]))
    assert not snomed_verhoeff_ok(sctid[:pos] + wrong + sctid[pos + 1:])


@given(digit_strings, st.data())
def test_verhoeff_catches_adjacent_transpositions(body: str, data: st.DataObject) -> None:
    sctid = body + str(verhoeff_check_digit(body))
    pos = data.draw(st.integers(min_value=1, max_value=len(sctid) - 2))
    if sctid[pos] == sctid[pos + 1]:
        return
    swapped = sctid[:pos] + sctid[pos + 1] + sctid[pos] + sctid[pos + 2:]
    assert not snomed_verhoeff_ok(swapped)


@given(st.text(alphabet="0123456789", min_size=1, max_size=7), st.data())
def test_loinc_mod10_catches_every_single_digit_error(body: str, data: st.DataObject) -> None:
    code = f"{body}-{loinc_check_digit(body)}"
    assert loinc_check_digit_ok(code)
    pos = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != body[pos]]))
    assert not loinc_check_digit_ok(f"{body[:pos]}{wrong}{body[pos + 1:]}-{loinc_check_digit(body)}")


# ----------------------------------------------------------------------------- KVNR (KVID-10) and PZN

def test_kvid10_published_example() -> None:
    # GKV-Spitzenverband's worked example: A12345678 -> A = 01; 0 1 1 2 3 4 5 6 7 8 weighted 1 2 1 2 ...
    # -> 0 2 1 4 3 8 5 12 7 16 -> digit sums 0+2+1+4+3+8+5+3+7+7 = 40 -> 40 mod 10 = 0
    assert kvid10_check_digit("A12345678") == 0
    assert kvid10_ok("A123456780")
    assert not kvid10_ok("A123456781")


def test_pzn_published_example() -> None:
    # IFA: PZN 1234567 -> 1*1 + 2*2 + 3*3 + 4*4 + 5*5 + 6*6 + 7*7 = 140 -> 140 mod 11 = 8
    assert pzn_check_digit("1234567") == 8
    assert pzn_ok("12345678") and not pzn_ok("12345679")
    assert pzn_ok("17654326")  # the reference DiGA's PZN in samples/ and docs/domain.md


def test_pzn_remainder_ten_is_never_valid() -> None:
    body = next(f"{n:07d}" for n in range(10_000_000) if pzn_check_digit(f"{n:07d}") is None)
    assert not any(pzn_ok(body + str(d)) for d in range(10))


@pytest.mark.parametrize("bad", ["a123456780", "A12345678", "A1234567800", "1123456780", "Ä123456780", "", 123])
def test_kvid10_shape(bad) -> None:
    assert not kvid10_ok(bad)


@pytest.mark.parametrize("bad", ["1234567", "123456789", "1234567a", "", 12345678, "１２３４５６７８"])
def test_pzn_shape(bad) -> None:
    assert not pzn_ok(bad)


@given(st.from_regex(r"[A-Z][0-9]{8}", fullmatch=True), st.integers(1, 9))
def test_kvid10_catches_every_single_digit_error(body: str, delta: int) -> None:
    good = body + str(kvid10_check_digit(body))
    assert kvid10_ok(good)
    assert not kvid10_ok(good[:9] + str((int(good[9]) + delta) % 10))


@given(st.from_regex(r"[0-9]{7}", fullmatch=True), st.integers(0, 6), st.integers(1, 9))
def test_pzn_catches_every_single_digit_error(body: str, at: int, delta: int) -> None:
    check = pzn_check_digit(body)
    if check is None:
        return
    wrong = body[:at] + str((int(body[at]) + delta) % 10) + body[at + 1:]
    assert not pzn_ok(wrong + str(check))
