"""How FHIR values read to a person, in one language (layer L2): the filters of the templates.

Dates, times with their UTC offset, numbers in the language's decimal format (never exponent
notation), quantities with the unit as people write it (the same unit as the coded value), code
displays from the language's `codes`, questionnaire severity bands from scales.yaml. All wording and
formats come from templates/texts/<language>.yaml; this module only applies them.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any


class Presenter:
    def __init__(self, texts: dict[str, Any], scales: dict[str, Any]):
        self.language = texts.get("language", "de-DE")
        self.labels: dict[str, str] = texts["labels"]
        self.codes: dict[str, str] = texts["codes"]
        self.units: dict[str, str] = texts["units"]
        self.formats: dict[str, str] = texts["formats"]
        self.genders: dict[str, str] = texts["gender"]
        self.band_names: dict[str, str] = texts["bands"]
        self.scales = scales
        self._decimal = self.formats.get("decimal", ".")
        # an export formats thousands of values, most of them repeated (a day, a code, a reading):
        # each distinct value is formatted once (the memos hold codes, dates and numbers, no names or notes)
        self._dates: dict[str, str] = {}
        self._clocks: dict[str, tuple[str, str]] = {}
        self._quantities: dict[tuple[Any, ...], str] = {}
        self._concepts: dict[tuple[Any, ...], str] = {}
        self._bands: dict[tuple[Any, ...], str] = {}
        self._date_times: dict[str, str] = {}
        self._periods: dict[tuple[str, str], tuple[str, str]] = {}
        self._offsets: dict[str, str] = {}
        self._floats: dict[float, str] = {}
        self._arounds: dict[str, tuple[str, str | None]] = {}
        # "{date}, {time} Uhr ({offset})" as the date followed by a tail that depends on the time only
        head, sep, rest = self.formats.get("date_time", "{date}").partition("{date}")
        self._date_time_tail = rest.replace("{", "{{").replace("}", "}}").replace("{{time}}", "{time}").replace(
            "{{offset}}", "{offset}") if sep and not head else None
        self._scale_codes = {tuple(k.split("|", 1)) for k in scales}

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"date": self.date, "time": self.time, "datetime": self.datetime, "number": self.number,
                "quantity": self.quantity, "unit": self.unit, "concept": self.concept, "gender": self.gender,
                "band": self.band, "severity": self.severity, "fill": fill, "components": self.components, "plain_markdown": plain_markdown}

    # -- dates and times ------------------------------------------------------------------------
    def date(self, value: Any) -> str:
        """A FHIR date, dateTime or instant as a date ("09.03.2026"; "03/2026"; "2026")."""
        if not isinstance(value, str) or len(value) < 4:
            return ""
        key = value[:10]
        return _cached(self._dates, key, self._date, key)

    def _date(self, value: str) -> str:
        if len(value) == 4:
            return value
        if len(value) == 7:
            return self.formats["month"].format(y=value[:4], m=value[5:7])
        return self.formats["date"].format(y=value[:4], m=value[5:7], d=value[8:10])

    def time(self, value: Any) -> str:
        """The time of day of a dateTime with its UTC offset ("07:15 (UTC+01:00)"); "" for a date."""
        parts = self._clock(value)
        return f"{parts[0]} ({parts[1]})" if parts and parts[1] else (parts[0] if parts else "")

    def _tail(self, clock: str, offset: str) -> str:
        assert self._date_time_tail is not None  # called only when the format splits (see __init__)
        around = self._arounds.get(offset)
        if around is None:
            around = _cached(self._arounds, offset, self._around, offset)
        if around[1] is None:
            return self._date_time_tail.format(time=clock, offset=offset)
        return around[0] + clock + around[1]

    def _around(self, offset: str) -> tuple[str, str | None]:
        """The tail of one UTC offset as (text before the time of day, text after it): the tail's format
        filled once with a marker for the time, so that each time (most are distinct) is only put in
        between — the same text as the format gives. (text, None) when the format does not name the time
        exactly once (or the offset holds the marker): then it is filled per time."""
        assert self._date_time_tail is not None
        filled = self._date_time_tail.format(time=_MARK, offset=offset)
        if filled.count(_MARK) != 1 or _MARK in offset:
            return filled, None
        before, after = filled.split(_MARK)
        return before, after

    def _clock(self, value: Any) -> tuple[str, str] | None:
        """(time of day, UTC offset) of a dateTime, as the language writes them; None for a date."""
        if not isinstance(value, str) or "T" not in value:
            return None
        return _cached(self._clocks, value[10:], self._clock_of, value)

    def _clock_of(self, value: str) -> tuple[str, str]:
        clock, offset = value[11:], ""
        for sign in ("Z", "+", "-"):
            cut = clock.find(sign)
            if cut > 0:
                clock, offset = clock[:cut], clock[cut:]
                break
        h, m, sec = (clock.split(":") + ["00", "00"])[:3]
        shown = self.formats["time"] if sec in ("00", "") else self.formats["time_seconds"]
        return shown.format(H=h, M=m, S=sec.replace(".", self._decimal)), self._offset(offset)

    def _offset(self, offset: str) -> str:
        """A UTC offset ("+01:00") as the language writes it (a document has few: each is written once)."""
        found = self._offsets.get(offset)
        return found if found is not None else _cached(self._offsets, offset, self._offset_of, offset)

    def _offset_of(self, offset: str) -> str:
        if offset in ("Z", "+00:00", "-00:00") or offset == "":
            return self.formats["utc"] if offset else ""
        return self.formats["offset"].format(sign=offset[0], hh=offset[1:3], mm=offset[4:6])

    def datetime(self, value: Any) -> str:
        """Date, time of day and UTC offset ("09.03.2026, 07:15 Uhr (UTC+01:00)"); a date alone as a date.
        (Called for every measurement: the date and the time of day are each formatted once.)"""
        if type(value) is not str or len(value) < 12 or value[10] != "T":
            return self.date(value)
        if self._date_time_tail is None:  # a format that does not start with the date
            clock, offset = self._clock(value) or ("", "")
            return self.formats["date_time"].format(date=self.date(value), time=clock, offset=offset)
        date = self._dates.get(value[:10])
        if date is None:
            date = self.date(value)
        tail = self._date_times.get(value[10:])
        if tail is None:
            clock, offset = self._clock(value) or ("", "")
            tail = _cached(self._date_times, value[10:], self._tail, clock, offset)
        return date + tail

    def period(self, day: str, granularity: str) -> tuple[str, str]:
        """(sort key, label) of the day, the week (from its Monday) or the month of a date (YYYY-MM-DD)."""
        key = (day, granularity)
        found = self._periods.get(key)
        return found if found is not None else _cached(self._periods, key, self._period_of, day, granularity)

    def _period_of(self, day: str, granularity: str) -> tuple[str, str]:
        if granularity == "month":
            return day[:7], self.date(day[:7])
        if granularity == "day":
            return day, self.date(day)
        try:
            d = _dt.date.fromisoformat(day)
        except ValueError:
            return day, self.date(day)
        monday = (d - _dt.timedelta(days=d.weekday())).isoformat()
        return monday, f"{self.labels['week_of']} {self.date(monday)}"

    # -- numbers and quantities -----------------------------------------------------------------
    def number(self, value: Any) -> str:
        """A JSON number in the language's format, never in exponent notation (1e-09 → 0,000000001).
        (A float is written once per value: a summary writes hundreds of minima, maxima and means; zero
        is not remembered, as 0.0 and -0.0 are one key and two texts.)"""
        if type(value) is float and value:
            found = self._floats.get(value)
            return found if found is not None else _cached(self._floats, value, self._number, value)
        return self._number(value)

    def _number(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            return "" if value is None else str(value)
        if isinstance(value, int):
            text = str(value)
        else:
            text = format(Decimal(repr(value)) if isinstance(value, float) else value, "f")
        return text.replace(".", self._decimal) if self._decimal != "." else text

    def unit(self, quantity: Any) -> str:
        """The unit of a Quantity as people write it: by its UCUM code, else its `unit` text."""
        if not isinstance(quantity, dict):
            return ""
        code = quantity.get("code")
        return str((self.units.get(code) if isinstance(code, str) else None) or quantity.get("unit") or code or "")

    def quantity(self, quantity: Any) -> str:
        if type(quantity) is not dict:
            return ""
        value = quantity.get("value")
        key = (type(value), value, quantity.get("code"), quantity.get("unit"))
        found = self._quantities.get(key)
        return found if found is not None else _cached(self._quantities, key, self._quantity, quantity)

    def _quantity(self, quantity: dict[str, Any]) -> str:
        unit = self.unit(quantity)
        return f"{self.number(quantity.get('value'))} {unit}" if unit else self.number(quantity.get("value"))

    # -- codes ----------------------------------------------------------------------------------
    def concept(self, value: Any) -> str:
        """The display of a CodeableConcept, a Coding or a list of them: the language's `codes` row
        of its first coding that has one, else the codings' own display, else the text, else the code."""
        if type(value) is dict:
            codings = value.get("coding")
            if codings is None:
                codings = [value]  # a Coding
            elif type(codings) is list and len(codings) == 1 and type(codings[0]) is dict and len(value) <= 2:
                c = codings[0]  # the common case, looked up once per distinct coding
                key = (c.get("system"), c.get("code"), c.get("display"), value.get("text"))
                found = self._concepts.get(key)
                return found if found is not None else _cached(self._concepts, key, self._concept, value, codings)
            return self._concept(value, codings)
        if isinstance(value, list):
            return ", ".join(t for t in map(self.concept, value) if t)
        return ""

    def _concept(self, value: dict[str, Any], codings: Any) -> str:
        fallback = ""
        for c in codings if isinstance(codings, list) else []:
            if not isinstance(c, dict):
                continue
            own = self.codes.get(f"{c.get('system')}|{c.get('code')}")
            if own is not None:
                return own
            fallback = fallback or c.get("display") or ""
        return fallback or value.get("text") or next((c.get("code", "") for c in codings or [] if isinstance(c, dict)), "")

    def own_display(self, codings: Any) -> str | None:
        """The language's `codes` row of the first of `codings` (a list of Codings) that has one."""
        for c in codings if isinstance(codings, list) else []:
            if isinstance(c, dict) and (own := self.codes.get(f"{c.get('system')}|{c.get('code')}")) is not None:
                return own
        return None

    def gender(self, code: Any) -> str:
        return self.genders.get(code, code) if isinstance(code, str) else ""

    def components(self, observation: Any) -> list[tuple[str, str]]:
        """The components of an Observation grouped by code, in order: [(label, "value, value, …")]."""
        groups: dict[str, list[str]] = {}
        for c in observation.get("component", []) if isinstance(observation, dict) else []:
            label = self.concept(c.get("code"))
            if "valueQuantity" in c:
                value = self.quantity(c["valueQuantity"])
            elif "valueCodeableConcept" in c:
                value = self.concept(c["valueCodeableConcept"])
            else:
                value = next((str(v) for k, v in c.items() if k.startswith("value")), "")
            groups.setdefault(label, []).append(value)
        return [(label, ", ".join(values)) for label, values in groups.items()]

    def scale(self, observation: Any) -> dict[str, Any] | None:
        """The scales.yaml row of a score Observation (by its code), or None."""
        if not isinstance(observation, dict):
            return None
        for c in (observation.get("code") or {}).get("coding") or []:
            row = self.scales.get(f"{c.get('system')}|{c.get('code')}")
            if row is not None:
                return row
        return None

    def band(self, observation: Any) -> str:
        """The severity band of a score Observation ("mittelgradig (10–14 Punkte)"), "" when it has none."""
        if type(observation) is not dict or "valueQuantity" not in observation:
            return ""
        codings = (observation.get("code") or {}).get("coding") or []
        scale_codes = self._scale_codes
        for c in codings:  # (a loop: called for every measurement, most of which have no scale)
            if type(c) is dict and (c.get("system"), c.get("code")) in scale_codes:
                break
        else:
            return ""
        key = (tuple((c.get("system"), c.get("code")) for c in codings if isinstance(c, dict)),
               observation["valueQuantity"].get("value") if isinstance(observation["valueQuantity"], dict) else None)
        return _cached(self._bands, key, self._band, observation)

    def severity(self, observation: Any) -> str:
        """The severity band of a score Observation as the phrase `labels.severity_of` (" – Schweregrad:
        mittelgradig (10–14 Punkte)"), "" when it has none."""
        band = self.band(observation)
        return fill(self.labels["severity_of"], band=band) if band else ""

    def _band(self, observation: dict[str, Any]) -> str:
        row = self.scale(observation)
        value = (observation.get("valueQuantity") or {}).get("value") if row else None
        if row is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return ""
        for b in row.get("bands", []):
            if b["low"] <= value <= b["high"]:
                return fill(self.labels["score_band"], band=self.band_names.get(b["band"], b["band"]),
                            low=b["low"], high=b["high"])
        return ""


MEMO_LIMIT = 50_000
_MARK = "\x00"  # stands for the time of day in a tail's format (no format or offset text holds it)


def _cached(memo: dict[Any, Any], key: Any, compute: Callable[..., Any], *args: Any) -> Any:
    """memo[key], computed by compute(*args) the first time; the memo is emptied when it is full (a
    long-running service sees ever new values)."""
    found = memo.get(key)
    if found is None:
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        found = memo[key] = compute(*args)
    return found


def fill(label: str, **values: Any) -> str:
    """A label of texts/<language>.yaml with its `{name}` placeholders filled (values are never
    read as format strings)."""
    return label.format_map({k: "" if v is None else v for k, v in values.items()})


def plain_markdown(text: Any) -> str:
    """FHIR markdown that the exporter wrote from plain text (every markdown character escaped with a
    backslash) as the plain text again."""
    if not isinstance(text, str):
        return ""
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and not text[i + 1].isalnum() and not text[i + 1].isspace():
            out.append(text[i + 1])
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)
