"""Offline check digits of SNOMED CT identifiers, LOINC codes, KVNR and PZN (layer L1; imports only the stdlib).

Neither check proves that a code exists or means what we think it means -- only a terminology server
can do that. They catch the typical mistakes offline: a mistyped or truncated code, swapped digits,
a code copied with the wrong check digit.

* SNOMED CT identifiers (SCTIDs) end in a Verhoeff check digit; the two digits before it are the
  partition identifier (``00``/``10`` concept, ``01``/``11`` description, ``02``/``12`` relationship).
  An SCTID is 6..18 digits without a leading zero.
* LOINC codes are ``<digits>-<check>`` with a Mod 10 (Luhn) check digit. LOINC Parts (``LP``),
  Answers (``LA``) and answer lists (``LL``) use the variant LOINC adopted from OpenMRS, which maps
  each character to ``ord(ch) - 48`` before weighting; for all-digit codes it equals plain Luhn.
  LOINC lists 14 deprecated codes whose published check digit is wrong (``LOINC_BAD_CHECK_DIGITS``);
  they fail this check on purpose -- none of them may be used anyway.
* KVNR (KVID-10, the unchangeable part of the German health insurance number): a capital letter and
  nine digits. The letter becomes two digits (A = 01 ... Z = 26); those two and the first eight digits
  are weighted 1, 2, 1, 2, ...; the digit sums of the products are added; the sum mod 10 is the tenth
  character (GKV-Spitzenverband, Richtlinien zur Krankenversichertennummer, Anlage 1: A12345678 -> 0).
* PZN (Pharmazentralnummer, 8 digits): digits 1..7 weighted 1..7, the sum mod 11 is digit 8; a
  remainder of 10 is never issued (IFA, PZN-Codierung: 1234567 -> 8).
"""

from __future__ import annotations

import re

__all__ = [
    "LOINC_BAD_CHECK_DIGITS",
    "kvid10_check_digit",
    "kvid10_ok",
    "pzn_check_digit",
    "pzn_ok",
    "SCTID_CONCEPT_PARTITIONS",
    "loinc_check_digit",
    "loinc_check_digit_ok",
    "sctid_partition",
    "snomed_verhoeff_ok",
    "verhoeff_check_digit",
]

# Verhoeff: multiplication table of the dihedral group D5, permutation table, inverses.
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)


def _permutation_rows(first: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """Verhoeff's position permutations: row 0 is the identity, row i applies `first` i times."""
    rows = [tuple(range(10))]
    for _ in range(7):
        rows.append(tuple(first[x] for x in rows[-1]))
    return tuple(rows)


_P = _permutation_rows((1, 5, 7, 6, 2, 8, 3, 0, 9, 4))
_INV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)

_SCTID = re.compile(r"[1-9][0-9]{5,17}")
_LOINC = re.compile(r"(?:[0-9]{1,7}|L[APL][0-9]{1,8})-[0-9]")
_KVID10 = re.compile(r"[A-Z][0-9]{9}")
_PZN = re.compile(r"[0-9]{8}")

SCTID_CONCEPT_PARTITIONS = frozenset({"00", "10"})
"""Partition identifiers of concept ids (short and long/namespaced format)."""

LOINC_BAD_CHECK_DIGITS = frozenset({
    "11491-6", "11501-6", "5895-7", "5896-5", "5897-3", "5928-1", "6028-3",
    "6415-5", "6580-7", "6645-7", "6646-5", "6647-3", "6648-1", "6649-9",
})
"""Deprecated LOINC codes published with a wrong check digit (LOINC Users' Guide, section 12 C)."""


def verhoeff_check_digit(digits: str) -> int:
    """The Verhoeff check digit to append to `digits` (a non-empty string of decimal digits)."""
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"not a digit string: {digits!r}")
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _D[c][_P[(i + 1) % 8][int(ch)]]
    return _INV[c]


def _verhoeff_ok(number: str) -> bool:
    c = 0
    for i, ch in enumerate(reversed(number)):
        c = _D[c][_P[i % 8][int(ch)]]
    return c == 0


def snomed_verhoeff_ok(sctid: str) -> bool:
    """True if `sctid` is shaped like an SCTID (6..18 digits, no leading zero) and its Verhoeff digit is right."""
    return isinstance(sctid, str) and bool(_SCTID.fullmatch(sctid)) and _verhoeff_ok(sctid)


def sctid_partition(sctid: str) -> str | None:
    """The two-digit partition identifier of a well-formed SCTID (``"00"`` for a short concept id), else None."""
    if not snomed_verhoeff_ok(sctid):
        return None
    return sctid[-3:-1]


def loinc_check_digit(body: str) -> int:
    """The LOINC Mod 10 check digit for `body` -- the code without ``-<check>`` (e.g. ``29463`` or ``LA6568``).

    Each character counts as ``ord(ch) - 48``; counting from the right, the 1st, 3rd, ... character
    is doubled and its digit sum taken (``2v - 9 * (v // 5)``), the others are added as they are.
    """
    if not body or not body.isascii() or not body.isalnum():
        raise ValueError(f"not a LOINC code body: {body!r}")
    total = 0
    for i, ch in enumerate(reversed(body.upper())):
        v = ord(ch) - 48
        total += 2 * v - 9 * (v // 5) if i % 2 == 0 else v
    return (10 - total % 10) % 10


def loinc_check_digit_ok(code: str) -> bool:
    """True if `code` looks like a LOINC code (``12345-6``, ``LA6568-5``, ``LP…``, ``LL…``) with a correct check digit."""
    if not isinstance(code, str) or not _LOINC.fullmatch(code):
        return False
    body, check = code.split("-")
    return loinc_check_digit(body) == int(check)


def kvid10_check_digit(body: str) -> int:
    """The KVID-10 check digit of `body`: a capital letter and eight digits (e.g. ``A12345678`` -> 0)."""
    if not isinstance(body, str) or not re.fullmatch(r"[A-Z][0-9]{8}", body):
        raise ValueError("not a KVID-10 body: a capital letter and eight digits")
    digits = f"{ord(body[0]) - 64:02d}" + body[1:]
    total = 0
    for i, ch in enumerate(digits):
        product = int(ch) * (1 if i % 2 == 0 else 2)
        total += product // 10 + product % 10
    return total % 10


def kvid10_ok(kvnr: str) -> bool:
    """True if `kvnr` is a capital letter and nine digits whose last digit is the KVID-10 check digit."""
    return isinstance(kvnr, str) and bool(_KVID10.fullmatch(kvnr)) and kvid10_check_digit(kvnr[:9]) == int(kvnr[9])


def pzn_check_digit(body: str) -> int | None:
    """The PZN check digit of seven digits, or None where the remainder is 10 (such numbers are never issued)."""
    if not isinstance(body, str) or not re.fullmatch(r"[0-9]{7}", body):
        raise ValueError("not a PZN body: seven digits")
    check = sum(int(ch) * (i + 1) for i, ch in enumerate(body)) % 11
    return None if check == 10 else check


def pzn_ok(pzn: str) -> bool:
    """True if `pzn` is eight digits whose last is the check digit of the first seven."""
    return isinstance(pzn, str) and bool(_PZN.fullmatch(pzn)) and pzn_check_digit(pzn[:7]) == int(pzn[7])
