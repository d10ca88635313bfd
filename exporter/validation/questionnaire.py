"""QuestionnaireResponse against its Questionnaire (layer L2), as the HL7 validator does.

The Questionnaire is resolved by its canonical among the loaded definitions (igs/ ships PHQ-9 and
GAD-7). Checked: every item's linkId exists in the Questionnaire; answer types fit the item type;
coded answers are among the item's answerOptions (system and code) or in its answerValueSet;
required items of a completed response are answered; a non-repeating item has at most one answer.
Not checked: enableWhen logic, initial values, answer constraints from extensions (min/max value).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from exporter.validation import messages as M

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


def check(qr: dict[str, Any], store: Any, member_of: Callable[[Any, str], bool | None], path: str,
          report: Callable[[str, str, str, str], None]) -> None:
    url = qr.get("questionnaire")
    if not isinstance(url, str):
        return
    q = store.get(url, "Questionnaire") or store.get(url.split("|", 1)[0], "Questionnaire")
    if q is None:
        report("warning", M.QUESTIONNAIRE, f"questionnaire {url} is not known, so the answers are not checked "
               "against it", path + ".questionnaire")
        return
    defs = _index(q.get("item", []), {})
    answered: set[str] = set()
    _walk(qr.get("item", []), defs, member_of, f"{path}.item", report, answered)
    if qr.get("status") == "completed":
        for link, d in defs.items():
            if d.get("required") and d.get("type") not in ("group", "display") and link not in answered:
                report("error", M.QUESTIONNAIRE, f"required item '{link}' of {url} has no answer", path)


def _walk(items: Any, defs: dict[str, dict[str, Any]], member_of: Callable[[Any, str], bool | None], path: str,
          report: Callable[[str, str, str, str], None], answered: set[str]) -> None:
    for i, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            continue
        here = f"{path}[{i}]"
        link = item.get("linkId")
        d = defs.get(link) if isinstance(link, str) else None
        if d is None:
            report("error", M.QUESTIONNAIRE, f"linkId '{link}' is not an item of the questionnaire", here)
            continue
        answers = [a for a in item.get("answer") or [] if isinstance(a, dict)]
        if answers:
            answered.add(link)
        if len(answers) > 1 and not d.get("repeats"):
            report("error", M.QUESTIONNAIRE, f"item '{link}' does not repeat but has {len(answers)} answers", here)
        allowed = ANSWER_TYPES.get(d.get("type", ""), ())
        for j, a in enumerate(answers):
            key, value = _answer_value(a)
            apath = f"{here}.answer[{j}]"
            if key is None:
                continue
            if allowed and key not in allowed:
                report("error", M.QUESTIONNAIRE, f"item '{link}' of type {d.get('type')} cannot be answered with "
                       f"{key}", apath)
                continue
            if key == "valueCoding" and isinstance(value, dict):
                options = [o.get("valueCoding") for o in d.get("answerOption") or [] if isinstance(o, dict)]
                options = [o for o in options if isinstance(o, dict)]
                if options and not any(o.get("code") == value.get("code") and o.get("system") == value.get("system")
                                       for o in options):
                    report("error", M.QUESTIONNAIRE, f"the code {value.get('system')}::{value.get('code')} is not "
                           f"in the set of permitted values of item '{link}'", apath)
                elif d.get("answerValueSet") and member_of(value, d["answerValueSet"]) is False:
                    report("error", M.QUESTIONNAIRE, f"the code {value.get('system')}::{value.get('code')} is not "
                           f"in {d['answerValueSet']}", apath)
            _walk(a.get("item"), defs, member_of, f"{apath}.item", report, answered)
        _walk(item.get("item"), defs, member_of, f"{here}.item", report, answered)
