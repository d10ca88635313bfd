"""minValue[x] / maxValue[x] (layer L2): an element's value within the bounds its definition sets.

Numbers compare by value; dates, dateTimes and instants compare at their common precision — a
value less precise than its bound that agrees with it as far as it goes (2000 against 2000-01-01)
cannot be said to break it and passes, as FHIRPath's comparison gives no answer there; times compare
as written. Quantities compare when their units agree, or after converting UCUM units that differ
only by a metric prefix (g and kg, mL and L); quantities in units that cannot be converted offline
are not compared.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from exporter.validation import messages as M
from exporter.validation.model import Member
from exporter.validation.rules import CHILDREN, Rule, rule

_QUANTITIES = frozenset({"Quantity", "Age", "Duration", "Distance", "Count", "SimpleQuantity", "MoneyQuantity"})
_TEMPORAL = frozenset({"date", "dateTime", "instant"})
_UCUM = "http://unitsofmeasure.org"
_PREFIXES = {"": 0, "k": 3, "h": 2, "da": 1, "d": -1, "c": -2, "m": -3, "u": -6, "n": -9, "p": -12}
_BASES = ("mol", "g", "m", "L", "l", "s", "Pa", "Hz", "J", "W", "eq")  # longest first where they share letters


def _bound(m: Member, side: str) -> Any:
    """The value of the element's minValue[x] or maxValue[x] for this member's type, or None."""
    type_code = m.type.code
    for key, value in m.node.element.items():
        if key.startswith(side):
            suffix = key[len(side):]
            code = suffix[:1].lower() + suffix[1:]
            if code == type_code or (suffix == "Quantity" and type_code in _QUANTITIES):
                return value
    return None


def _scale(code: str) -> tuple[str, int] | None:
    """A UCUM code that is a metric prefix + base unit, as (base, power of ten)."""
    for base in _BASES:
        if code.endswith(base) and code[:-len(base)] in _PREFIXES:
            return base, _PREFIXES[code[:-len(base)]]
    return None


def _quantity_number(q: Any, unit_of: Any) -> Decimal | None:
    """The value of quantity `q` in the unit of quantity `unit_of`; None when they cannot be compared."""
    if not isinstance(q, dict) or not isinstance(unit_of, dict) or "value" not in q or "value" not in unit_of:
        return None
    try:
        value = Decimal(str(q["value"]))
    except (InvalidOperation, ValueError):
        return None
    a, b = q.get("code", q.get("unit")), unit_of.get("code", unit_of.get("unit"))
    if a == b and q.get("system") == unit_of.get("system"):
        return value
    if q.get("system") != _UCUM or unit_of.get("system") != _UCUM or not isinstance(a, str) or not isinstance(b, str):
        return None
    sa, sb = _scale(a), _scale(b)
    if sa is None or sb is None or sa[0].lower() != sb[0].lower():
        return None
    return value.scaleb(sa[1] - sb[1])


def _instant(v: str) -> datetime | None:
    try:
        return datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None


def compare(value: Any, bound: Any, type_code: str) -> int | None:
    """-1, 0 or 1 as `value` is below, at or above `bound`; None when they cannot be compared."""
    if type_code in _QUANTITIES:
        a, b = _quantity_number(value, bound), _quantity_number(bound, bound)
    elif type_code in _TEMPORAL and isinstance(value, str) and isinstance(bound, str):
        if "T" in value and "T" in bound:
            x, y = _instant(value), _instant(bound)
            if x is None or y is None or (x.tzinfo is None) != (y.tzinfo is None):
                return None
            return (x > y) - (x < y)
        n = min(len(value), len(bound), 10)  # compare the common date precision
        a_, b_ = value[:n], bound[:n]
        if a_ == b_ and len(value) != len(bound):
            return None  # equal as far as the less precise one goes: no answer
        return (a_ > b_) - (a_ < b_)
    elif type_code == "time" and isinstance(value, str) and isinstance(bound, str):
        return (value > bound) - (value < bound)
    else:
        a, b = value, bound
    if a is None or b is None or isinstance(a, (bool, str, dict)) or isinstance(b, (bool, str, dict)):
        return None
    return (a > b) - (a < b)


def _shown(v: Any) -> str:
    if isinstance(v, dict):
        return f"{v.get('value')} {v.get('code', v.get('unit', ''))}".strip()
    return str(v)


class _Bound(Rule):
    side = ""
    message = ""
    broken_when = 0  # the comparison result that breaks the bound

    def __init__(self, env: Any):
        super().__init__(env)
        self._bounds: dict[int, Any] = {}

    def applies(self, m: Member) -> bool:
        b = _bound(m, self.side)
        if b is not None:
            self._bounds[id(m)] = b
        return b is not None

    def holds(self, value: Any, m: Member, ctx: Any) -> bool:
        return compare(value, self._bounds[id(m)], m.type.code) != self.broken_when

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        ctx.add(self.message, path, bound=_shown(self._bounds[id(m)]), path=m.node.path)


@rule
class MinValue(_Bound):
    """ElementDefinition.minValue[x]: the value is not below it."""

    messages = (M.MIN_VALUE,)
    stage = CHILDREN + 20
    side, message, broken_when = "minValue", M.MIN_VALUE, -1


@rule
class MaxValue(_Bound):
    """ElementDefinition.maxValue[x]: the value is not above it."""

    messages = (M.MAX_VALUE,)
    stage = CHILDREN + 20
    side, message, broken_when = "maxValue", M.MAX_VALUE, 1
