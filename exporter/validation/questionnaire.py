"""QuestionnaireResponse against its Questionnaire (layer L2), as the HL7 validator does.

The Questionnaire is resolved by its canonical among the loaded definitions (igs/ ships PHQ-9 and
GAD-7). Checked: every item's linkId exists in the Questionnaire; answer types fit the item type;
coded answers are among the item's answerOptions (system and code) or in its answerValueSet;
required items of a completed response are answered; a non-repeating item has at most one answer.
Not checked: enableWhen logic, initial values, answer constraints from extensions (min/max value).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from exporter.validation import messages as M
from exporter.validation.model import Member
from exporter.validation.rules import RESOURCE, Rule, rule

ANSWER_TYPES = {
    "boolean": ("valueBoolean",), "decimal": ("valueDecimal",), "integer": ("valueInteger",),
    "date": ("valueDate",), "dateTime": ("valueDateTime",), "time": ("valueTime",),
    "string": ("valueString",), "text": ("valueString",), "url": ("valueUri",),
    "choice": ("valueCoding",), "open-choice": ("valueCoding", "valueString"),
    "attachment": ("valueAttachment",), "reference": ("valueReference",), "quantity": ("valueQuantity",),
}


def _index(items: Iterable[dict[str, Any]], out: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    for it in items or []:
        if isinstance(it, dict) and isinstance(it.get("linkId"), str):
            out[it["linkId"]] = it
            _index(it.get("item", []), out)
    return out


def _answer_value(answer: dict[str, Any]) -> tuple[str | None, Any]:
    for k, v in answer.items():
        if k.startswith("value"):
            return k, v
    return None, None


class _Item:
    """What the check needs of one Questionnaire item, worked out once per Questionnaire."""

    __slots__ = ("d", "repeats", "required", "allowed", "options", "value_set")

    def __init__(self, d: dict[str, Any]):
        self.d = d
        self.repeats = bool(d.get("repeats"))
        # must a completed response answer it? (groups and display items hold no answer of their own)
        self.required = bool(d.get("required")) and d.get("type") not in ("group", "display")
        self.allowed = ANSWER_TYPES.get(d.get("type", ""), ())
        options = [o.get("valueCoding") for o in d.get("answerOption") or [] if isinstance(o, dict)]
        self.options = {(o.get("system"), o.get("code")) for o in options if isinstance(o, dict)} or None
        self.value_set = d.get("answerValueSet")


_PLANS: dict[int, tuple[dict[str, Any], dict[str, _Item], tuple[str, ...]]] = {}


def _plan(q: dict[str, Any]) -> tuple[dict[str, _Item], tuple[str, ...]]:
    """The items of Questionnaire `q` by linkId, and the linkIds a completed response must answer
    (in the Questionnaire's order)."""
    hit = _PLANS.get(id(q))
    if hit is None or hit[0] is not q:  # the Questionnaire is kept referenced, so its id stays its own
        items = {link: _Item(d) for link, d in _index(q.get("item", []), {}).items()}
        hit = (q, items, tuple(link for link, p in items.items() if p.required))
        if len(_PLANS) < 1000:
            _PLANS[id(q)] = hit
    return hit[1], hit[2]


def check(qr: dict[str, Any], store: Any, member_of: Callable[[Any, str], bool | None], path: str,
          report: Callable[..., None]) -> None:
    url = qr.get("questionnaire")
    if not isinstance(url, str):
        return
    q = store.get(url, "Questionnaire") or store.get(url.split("|", 1)[0], "Questionnaire")
    if q is None:
        report(M.QUESTIONNAIRE, path + ".questionnaire", "warning", "unknown", url=url)
        return
    plan, required = _plan(q)
    answered: set[str] = set()
    _walk(qr.get("item", []), plan, member_of, f"{path}.item", report, answered)
    if qr.get("status") == "completed":
        for link in required:
            if link not in answered:
                report(M.QUESTIONNAIRE, path, "error", "required", link=link, url=url)


def _walk(items: Any, plan: dict[str, _Item], member_of: Callable[[Any, str], bool | None], path: str,
          report: Callable[..., None], answered: set[str]) -> None:
    for i, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            continue
        link = item.get("linkId")
        p = plan.get(link) if isinstance(link, str) else None
        if p is None or not isinstance(link, str):
            report(M.QUESTIONNAIRE, f"{path}[{i}]", "error", "link", link=link)
            continue
        answers = item.get("answer")
        if answers:
            answers = [a for a in answers if isinstance(a, dict)] if isinstance(answers, list) else []
        if answers:
            answered.add(link)
            if len(answers) > 1 and not p.repeats:
                report(M.QUESTIONNAIRE, f"{path}[{i}]", "error", "repeats", link=link, count=len(answers))
            for j, a in enumerate(answers):
                key, value = _answer_value(a)
                if key is None:
                    continue
                if p.allowed and key not in p.allowed:
                    report(M.QUESTIONNAIRE, f"{path}[{i}].answer[{j}]", "error", "type", link=link,
                           type=p.d.get("type"), key=key)
                    continue
                if key == "valueCoding" and isinstance(value, dict):
                    if p.options is not None:
                        pair = (value.get("system"), value.get("code"))
                        if not (pair[0].__hash__ and pair[1].__hash__ and pair in p.options):  # a dict as code: no
                            report(M.QUESTIONNAIRE, f"{path}[{i}].answer[{j}]", "error", "option", link=link)
                    elif p.value_set and member_of(value, p.value_set) is False:
                        report(M.QUESTIONNAIRE, f"{path}[{i}].answer[{j}]", "error", "value_set", vs=p.value_set)
                if "item" in a:
                    _walk(a["item"], plan, member_of, f"{path}[{i}].answer[{j}].item", report, answered)
        if "item" in item:
            _walk(item["item"], plan, member_of, f"{path}[{i}].item", report, answered)


@rule
class Answers(Rule):
    """A QuestionnaireResponse's answers fit the Questionnaire it names (when that is loaded)."""

    messages = (M.QUESTIONNAIRE,)
    stage = RESOURCE

    def applies(self, m: Member) -> bool:
        return m.is_root and m.type.code == "QuestionnaireResponse"

    def holds(self, value: Any, m: Member, ctx: Any) -> bool:
        found: list[Any] = []
        check(value, self.env.store, ctx.member_of, "", lambda *a, **k: found.append(a))
        return not found

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        check(value, self.env.store, ctx.member_of, path, ctx.add)
