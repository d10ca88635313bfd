"""R4 primitive formats and strict JSON types."""

import pytest

from exporter.validation.primitives import PRIMITIVE_CHECKS

OK = [
    ("boolean", True), ("integer", 0), ("integer", -2147483648), ("positiveInt", 1), ("unsignedInt", 0),
    ("decimal", 1.5), ("decimal", 3), ("string", "a b"), ("code", "mm[Hg]"), ("code", "a b"),
    ("id", "a-Z.0" * 12 + "abcd"), ("uri", "urn:uuid:1"), ("date", "2024"), ("date", "2024-02-29"),
    ("dateTime", "2024-02"), ("dateTime", "2024-02-29T23:59:60+14:00"), ("dateTime", "2024-01-01T00:00:00Z"),
    ("instant", "2024-01-01T00:00:00.123Z"), ("time", "23:59:59"),
    ("uuid", "urn:uuid:3f1c2a3e-5b7d-4c1e-9a2b-0c4d5e6f7a8b"), ("oid", "urn:oid:1.2.276.0.76"),
    ("base64Binary", "aGVsbG8="), ("markdown", "**x**"),
]
BAD = [
    ("boolean", "true", "JSON boolean"), ("integer", 1.0, "without a decimal point"), ("integer", True, "JSON integer"),
    ("integer", 2147483648, "out of range"), ("positiveInt", 0, "out of range"), ("unsignedInt", -1, "out of range"),
    ("decimal", "1.5", "JSON number"), ("string", "", "empty"), ("string", "   ", "non-whitespace"),
    ("string", "a\x00b", "control"), ("code", " a", "code"), ("code", "a  b", "code"), ("code", "a\tb", "code"),
    ("id", "a" * 65, "id"), ("id", "a_b", "id"), ("uri", "a b", "uri"), ("date", "2023-02-29", "calendar"),
    ("date", "2024-13", "date"), ("date", "24", "date"), ("dateTime", "2024-01-01T10:00:00", "timezone"),
    ("dateTime", "2024-01-01T10:00Z", "dateTime"), ("instant", "2024-01-01", "instant"),
    ("instant", "2024-01-01T00:00:00", "instant"), ("time", "24:00:00", "time"),
    ("uuid", "urn:uuid:3F1C2A3E-5B7D-4C1E-9A2B-0C4D5E6F7A8B", "uuid"), ("oid", "urn:oid:01.2", "oid"),
    ("base64Binary", "not base64!", "base64"), ("decimal", float("nan"), "finite"),
]


@pytest.mark.parametrize("type_code,value", OK)
def test_valid_primitives(type_code, value):
    assert PRIMITIVE_CHECKS[type_code](value) is None


@pytest.mark.parametrize("type_code,value,reason", BAD)
def test_invalid_primitives(type_code, value, reason):
    problem = PRIMITIVE_CHECKS[type_code](value)
    assert problem is not None and reason in problem
