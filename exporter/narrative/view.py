"""The document as its templates see it (layer L2): a read-only view of one document Bundle.

Built from the Bundle alone (never from the domain document), so the narratives, the HTML and the
PDF can only show what the coded data says. Templates reach it as `doc`: the Composition, Patient,
DiGA Device and DeviceDefinition, Provenance, covered period, sections with their resolved entries,
each questionnaire answer with its question and answer text (the item of the Questionnaire in the
Bundle, worded in the document's language), and summaries of long series (count, minimum, maximum, mean per day,
week or month, the finest that fits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from exporter.narrative.present import Presenter, fill

ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
COVERED_PERIOD_SUFFIX = "/StructureDefinition/diga-covered-period"
GRANULARITIES = ("day", "week", "month")
_NUMBERS = frozenset({int, float})  # the types a summarised value has (not bool, a subclass of int)


@dataclass
class SectionView:
    key: str | None
    title: str
    code: dict[str, Any]
    entries: list[dict[str, Any]]
    sections: list[SectionView]
    empty_reason: str
    template: str
    source: dict[str, Any] = field(repr=False)
    depth: int = 1

    @property
    def count(self) -> int:
        """Entries of this section and its sub-sections."""
        return len(self.entries) + sum(s.count for s in self.sections)


@dataclass
class QuestionnaireText:
    items: list[str]
    options: list[str]


@dataclass
class SummaryCell:
    n: int
    low: str
    high: str
    mean: str


@dataclass
class SummaryKind:
    name: str
    unit: str


@dataclass
class SummaryRow:
    period: str
    cells: list[SummaryCell | None]  # one per kind of the summary, None: no value of that kind


@dataclass
class DiaryRow:
    period: str
    n: int
    mood: str
    symptoms: str
    notes: list[tuple[str, str]]


@dataclass
class Summary:
    granularity: str  # day | week | month
    rows: list[Any]
    kinds: list[SummaryKind]  # the columns of a measurement summary (code and unit)


class DocumentView:
    def __init__(self, bundle: dict[str, Any], presenter: Presenter, section_keys: dict[tuple[str, str], str],
                 templates: Any):
        self.bundle = bundle
        self.p = presenter
        self.by_url: dict[str, dict[str, Any]] = {}
        self._url_of: dict[int, str] = {}
        self.resources: list[dict[str, Any]] = []
        self.questionnaires: dict[str, dict[str, Any]] = {}
        resources, by_url, url_of = self.resources, self.by_url, self._url_of
        first_composition: dict[str, Any] | None = None
        self.provenances: list[dict[str, Any]] = []
        for e in bundle.get("entry") or ():  # one pass: thousands of entries
            r = e.get("resource") if type(e) is dict else None
            if type(r) is not dict:
                continue
            resources.append(r)
            full = e.get("fullUrl")
            if type(full) is str:
                by_url[full] = r
                url_of[id(r)] = full
            kind = r.get("resourceType")
            if kind == "Questionnaire":
                if isinstance(r.get("url"), str):
                    self.questionnaires[r["url"]] = r
                    if r.get("version"):
                        self.questionnaires[f"{r['url']}|{r['version']}"] = r
            elif kind == "Provenance":
                self.provenances.append(r)
            elif kind == "Composition" and first_composition is None:
                first_composition = r
        comp = first_composition if first_composition is not None else {}
        self.composition = comp
        self.patient = self.resolve(comp.get("subject")) or {}
        self.device = self.resolve((comp.get("author") or [None])[0]) or {}
        self.device_definition = self.resolve(self.device.get("definition")) or {}
        self.period = next((x.get("valuePeriod") for x in comp.get("extension") or []
                            if str(x.get("url", "")).endswith(COVERED_PERIOD_SUFFIX)), None) or {}
        self.identifier = (bundle.get("identifier") or {}).get("value", "")
        self.timestamp = bundle.get("timestamp", "")
        self._section_keys = section_keys
        self._templates = templates
        self.sections = [self._section(s, 1) for s in comp.get("section") or [] if isinstance(s, dict)]
        self._alert_items = {row["questionnaire"]: row["alert_item"] for row in presenter.scales.values()
                             if isinstance(row, dict) and row.get("alert_item") and row.get("questionnaire")}
        self._derived: dict[str, dict[str, Any]] | None = None
        self._answers: dict[int, list[dict[str, Any]]] = {}
        self._rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._q_index: dict[str, tuple[dict[str, str], dict[tuple[Any, ...], Any]]] = {}

    # -- structure ------------------------------------------------------------------------------
    def resolve(self, ref: Any) -> dict[str, Any] | None:
        if isinstance(ref, dict):
            ref = ref.get("reference")
        return self.by_url.get(ref) if isinstance(ref, str) else None

    def _section(self, s: dict[str, Any], depth: int) -> SectionView:
        codings = (s.get("code") or {}).get("coding") or []
        key = next((self._section_keys[(c.get("system"), c.get("code"))] for c in codings
                    if (c.get("system"), c.get("code")) in self._section_keys), None)
        template = f"section/{key}.html" if key and f"section/{key}.html" in self._templates else "section/default.html"
        entries = [r for r in map(self.resolve, s.get("entry") or []) if r is not None]
        return SectionView(key, self.p.concept(s.get("code")) or s.get("title", ""), s.get("code") or {}, entries,
                           [self._section(c, depth + 1) for c in s.get("section") or [] if isinstance(c, dict)],
                           self.p.concept(s.get("emptyReason")) if s.get("emptyReason") else "", template, s, depth)

    @staticmethod
    def of_type(resources: list[dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
        """The resources of one type, in order."""
        return [r for r in resources if r.get("resourceType") == resource_type]

    def walk(self) -> list[SectionView]:
        """Every section, depth first (a sub-section after its parent). Iterative: a recursive inner
        function is a reference cycle (it holds itself) that would keep `out` — and through it the
        Bundle's resources — alive until the cyclic collector runs."""
        out: list[SectionView] = []
        todo = list(reversed(self.sections))
        while todo:
            s = todo.pop()
            out.append(s)
            todo.extend(reversed(s.sections))
        return out

    def score_of(self, response: dict[str, Any]) -> dict[str, Any] | None:
        """The score Observation derived from a QuestionnaireResponse (Observation.derivedFrom)."""
        if self._derived is None:
            self._derived = {}
            for r in self.resources:
                for d in r.get("derivedFrom") or [] if r.get("resourceType") == "Observation" else []:
                    if isinstance(d, dict) and isinstance(d.get("reference"), str):
                        self._derived[d["reference"]] = r
        return self._derived.get(self._url_of.get(id(response), ""))

    def name_of(self, resource: Any) -> str:
        """A person's (given names, family name) or a device's name (its first deviceName)."""
        if not isinstance(resource, dict):
            return ""
        for n in resource.get("name") or []:
            if isinstance(n, dict):
                return " ".join([*(g for g in n.get("given") or [] if isinstance(g, str)), n.get("family") or ""]).strip()
        return next((n.get("name", "") for n in resource.get("deviceName") or [] if isinstance(n, dict)), "")

    # -- questionnaires -------------------------------------------------------------------------
    def questionnaire_items(self, questionnaire: dict[str, Any]) -> QuestionnaireText:
        """The questions and the answer options of the first item (with points), in the document's language."""
        items = [i for i in questionnaire.get("item") or [] if isinstance(i, dict)]
        options = []
        for o in (items[0].get("answerOption") or []) if items else []:
            points = next((x.get("valueDecimal") for x in o.get("extension") or [] if x.get("url") == ORDINAL), None)
            text = self.p.concept(o.get("valueCoding"))
            options.append(f"{text} = {self.p.number(points)}" if points is not None else text)
        return QuestionnaireText([self._question(i) for i in items], options)

    def answers(self, response: dict[str, Any]) -> list[dict[str, Any]]:
        """Each answered item as {question, answer, points, alert, link_id}: the question (the item of
        the Questionnaire in the Bundle: the language's `codes` row of its code, else its text), the
        answer (`codes` row, else the coding's display), its points (the answerOption's ordinalValue)
        and whether it must be pointed out (scales.yaml `alert_item`, answered above 0)."""
        found = self._answers.get(id(response))
        if found is not None:
            return found
        canonical = str(response.get("questionnaire", ""))
        rows = []
        memo = self._rows
        for it in response.get("item") or []:
            link = it.get("linkId", "")
            for a in it.get("answer") or [{}]:
                coding = a.get("valueCoding")
                # a row depends on the Questionnaire, the item and the coded answer only: made once,
                # shared (templates only read it)
                key = (canonical, link, coding.get("system"), coding.get("code"), coding.get("display")) \
                    if type(coding) is dict and len(a) == 1 else None
                row = memo.get(key) if key is not None else None
                if row is None:
                    row = self._answer_row(canonical, it, a)
                    if key is not None:
                        memo[key] = row
                rows.append(row)
        self._answers[id(response)] = rows
        return rows

    def _answer_row(self, canonical: str, item: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        questions, points_of = self._questionnaire_index(canonical)
        link = item.get("linkId", "")
        coding = answer.get("valueCoding") or {}
        text = self.p.concept(coding) or next((str(v) for k, v in answer.items() if k.startswith("value")), "")
        points = points_of.get((link, coding.get("system"), coding.get("code")))
        alert_item = self._alert_items.get(canonical.split("|")[0])
        return {"link_id": link, "question": questions.get(link) or item.get("text") or link, "answer": text,
                "points": points, "alert": link == alert_item and isinstance(points, (int, float)) and points > 0}

    def _questionnaire_index(self, canonical: str) -> tuple[dict[str, str], dict[tuple[Any, ...], Any]]:
        """(linkId -> question text, (linkId, system, code) -> points) of a Questionnaire in the Bundle."""
        found = self._q_index.get(canonical)
        if found is None:
            q = self.questionnaires.get(canonical) or {}
            questions: dict[str, str] = {}
            points: dict[tuple[Any, ...], Any] = {}
            for i in q.get("item") or []:
                if not isinstance(i, dict):
                    continue
                questions[i.get("linkId", "")] = self._question(i)
                for o in i.get("answerOption") or []:
                    c = o.get("valueCoding") or {}
                    points[(i.get("linkId"), c.get("system"), c.get("code"))] = next(
                        (x.get("valueDecimal") for x in o.get("extension") or [] if x.get("url") == ORDINAL), None)
            found = self._q_index[canonical] = (questions, points)
        return found

    def _question(self, item: dict[str, Any]) -> str:
        own = self.p.own_display(item.get("code"))
        return own if own is not None else item.get("text", "")

    def title_of(self, questionnaire_ref: Any) -> str:
        q = self.questionnaires.get(questionnaire_ref if isinstance(questionnaire_ref, str) else "") or {}
        return self.p.concept(q.get("code")) or q.get("title") or str(questionnaire_ref or "")

    def alerts(self, entries: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(response, answer) of every answer among `entries` that must be pointed out."""
        return [(r, row) for r in entries if r.get("resourceType") == "QuestionnaireResponse"
                for row in self.answers(r) if row["alert"]]

    # -- summaries of long series ---------------------------------------------------------------
    def _period(self, when: str, granularity: str) -> tuple[str, str]:
        """(sort key, label) of the day, week (from Monday) or month of a dateTime, in its own offset."""
        return self.p.period(when[:10], granularity)

    def _granularity(self, days: Any, max_rows: int) -> tuple[str, dict[str, tuple[str, str]]]:
        """The finest granularity with at most `max_rows` periods, for days (or dateTimes, or (day, …)
        pairs), and the period (sort key, label) of each day (its first 10 characters) in it."""
        days = {(d[0] if isinstance(d, tuple) else d)[:10] for d in days}
        periods: dict[str, tuple[str, str]] = {}
        for g in GRANULARITIES:
            periods = {d: self._period(d, g) for d in days}
            if len({key for key, _ in periods.values()}) <= max_rows:
                return g, periods
        return GRANULARITIES[-1], periods

    def summary(self, entries: list[dict[str, Any]], max_rows: int = 100) -> Summary:
        """Count, minimum, maximum and mean of each kind of measurement (code and unit, the columns) per
        period (the rows: day, week or month, the finest with at most `max_rows` periods)."""
        # (day, kind) -> values; a kind is the code and the unit, named once per distinct coding and
        # numbered (its 6-tuple is hashed once per measurement, the day and number once more)
        by_day: dict[tuple[str, int], list[tuple[Any, ...]]] = {}
        kinds: dict[tuple[Any, ...], int] = {}
        names: list[tuple[str, str]] = []  # (name, unit) of each kind, by number
        for r in entries:  # thousands of measurements: plain look-ups only
            when = r.get("effectiveDateTime") or (r.get("effectivePeriod") or {}).get("start")
            q = r.get("valueQuantity")
            if q is not None:
                v = q.get("value")
                if not when or (type(v) is not int and type(v) is not float):
                    continue
                values: tuple[Any, ...] = (v,)
            else:
                qs = [c["valueQuantity"] for c in r.get("component") or () if "valueQuantity" in c]
                values = tuple([c.get("value") for c in qs])
                if not when or not qs or not _NUMBERS.issuperset(map(type, values)):  # each an int or a float
                    continue
                q = qs[0]
            code = r.get("code") or {}
            first = (code.get("coding") or [{}])[0]
            kind = (first.get("system"), first.get("code"), first.get("display"), code.get("text"), q.get("code"),
                    q.get("unit"))
            number = kinds.get(kind)
            if number is None:
                number = kinds[kind] = len(names)
                names.append((self.p.concept(code), self.p.unit(q)))
            day_kind = (when[:10], number)
            series = by_day.get(day_kind)
            if series is None:
                by_day[day_kind] = [values]
            else:
                series.append(values)
        granularity, periods = self._granularity(by_day, max_rows)
        groups: dict[tuple[str, tuple[str, str]], list[tuple[Any, ...]]] = {}  # (period, (name, unit)) -> values
        labels: dict[str, str] = {}
        for (day, number), values_of_day in by_day.items():
            key, label = periods[day]
            labels[key] = label
            groups.setdefault((key, names[number]), []).extend(values_of_day)
        shown = sorted({name_unit for _, name_unit in groups})  # one column per (name, unit)
        rows = []
        for key in sorted(labels):
            cells: list[SummaryCell | None] = []
            for name_unit in shown:
                series = groups.get((key, name_unit))
                if series is None:
                    cells.append(None)
                    continue
                width = len(series[0])
                cols = [[v[i] for v in series if len(v) == width] for i in range(width)]
                cells.append(SummaryCell(len(series), "/".join(self.p.number(min(c)) for c in cols),
                                         "/".join(self.p.number(max(c)) for c in cols),
                                         "/".join(self.p.number(round(sum(c) / len(c), 1)) for c in cols)))
            rows.append(SummaryRow(labels[key], cells))
        return Summary(granularity, rows, [SummaryKind(name, unit) for name, unit in shown])

    def diary(self, entries: list[dict[str, Any]], max_rows: int = 100) -> Summary:
        """Diary entries per period: count, mood (mean, minimum–maximum on the 1–5 scale), how often
        each symptom was reported, and every note with its date."""
        granularity, periods = self._granularity({(r.get("effectiveDateTime") or "")[:10] for r in entries}, max_rows)
        groups: dict[str, list[dict[str, Any]]] = {}
        labels: dict[str, str] = {}
        for r in entries:
            key, label = periods[(r.get("effectiveDateTime") or "")[:10]]
            labels[key] = label
            groups.setdefault(key, []).append(r)
        rows = []
        for key in sorted(groups):
            moods: list[int] = []
            symptoms: dict[str, int] = {}
            notes: list[tuple[str, str]] = []
            for r in groups[key]:
                for c in r.get("component") or []:
                    value = c.get("valueCodeableConcept")
                    code = ((c.get("code") or {}).get("coding") or [{}])[0].get("code")
                    if code == "mood":
                        mood = ((value or {}).get("coding") or [{}])[0].get("code", "")
                        if str(mood).isdigit():
                            moods.append(int(mood))
                    elif value is not None:
                        label = self.p.concept(value)
                        symptoms[label] = symptoms.get(label, 0) + 1
                for n in r.get("note") or []:
                    if n.get("text"):
                        notes.append((self.p.date(r.get("effectiveDateTime")), n["text"]))
            mood = (fill("{mean} ({low}–{high})", mean=self.p.number(round(sum(moods) / len(moods), 1)),
                         low=min(moods), high=max(moods)) if moods else "")
            rows.append(DiaryRow(labels[key], len(groups[key]), mood,
                                 ", ".join(f"{k} ({v})" for k, v in sorted(symptoms.items(), key=lambda kv: (-kv[1], kv[0]))),
                                 notes))
        return Summary(granularity, rows, [])
