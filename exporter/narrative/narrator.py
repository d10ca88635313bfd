"""Write a document Bundle's narratives from its resources (layer L2).

    narrator = Narrator(mapping_set.templates, "de-DE", layout_sections)   # compile once; .issues
    issues = narrator.apply(bundle)                                        # per export

Each resource gets `text` from `resource/<profile id>.html` or `resource/<type>.html` (all resources
of one template in one pass), each Composition section its `title` and `text` from
`section/<key>.html` (`section/default.html` else), the Composition its summary from
`composition.html`; every narrative's div carries the language (lang, xml:lang). A rendering problem is an
error naming the template, never data.
"""

from __future__ import annotations

import re
from typing import Any

from exporter.engine.templating import TemplateLibrary, TemplateProblem
from exporter.issues import Issue, IssueCode, SourceLocation, error
from exporter.mapping.templates import DEFAULT_LANGUAGE, TemplateSources
from exporter.narrative.present import Presenter
from exporter.narrative.view import DocumentView

XHTML_CLOSE = "</div>"
_UNDECIDED: Any = object()  # a resource kind whose template is not looked up yet
_TEXT_RUN = re.compile(r">[^<]*<")
_EMPTY_ELEMENT = re.compile(r"<([A-Za-z][\w.-]*)((?:\s[^<>]*)?)></\1>")
# a `<` that opens a tag (not `</`), everything up to the next `<` (taken whole, never given back: one
# pass over the text), which ends in `>`, and that next `<` closes a tag: `<td></`, `<a name="x"></`
_OPEN_THEN_CLOSE = re.compile(r"<[^/<][^<]*+(?<=>)</")


def canonical(xhtml: str) -> str:
    """The narrative as an XML serializer writes it (lxml, and the HL7 tools: FHIR's own examples carry
    `<a name="x"/>`): quotes in text literal (jinja2 escapes them as `&#39;` / `&#34;`, which XML reads
    as the same characters — an attribute keeps its escaped quote) and an element without content
    closed as `<td/>`. So the FHIR JSON and the FHIR XML of a document carry the same div, and XML read
    back gives the JSON's string. (The HTML/PDF export renders the templates itself, as HTML.)"""
    if _may_have_empty_element(xhtml):
        xhtml = _EMPTY_ELEMENT.sub(r"<\1\2/>", xhtml)
    if "&#" not in xhtml:
        return xhtml
    xhtml = xhtml.replace("&#39;", "'")
    return _TEXT_RUN.sub(lambda m: m.group(0).replace("&#34;", '"'), xhtml) if "&#34;" in xhtml else xhtml


def _may_have_empty_element(xhtml: str) -> bool:
    """Whether some `></` follows an opening tag — what every match of _EMPTY_ELEMENT has (its name and
    attributes hold no `<`), found without the regex trying every tag: most divs only end `</p></div>`."""
    return _OPEN_THEN_CLOSE.search(xhtml) is not None


def section_keys(layout_sections: list[Any]) -> dict[tuple[Any, Any], str]:
    """(system, code) of each section of bundle.yaml -> its key."""
    out: dict[tuple[Any, Any], str] = {}
    for s in layout_sections or []:
        if not isinstance(s, dict):
            continue
        for c in (s.get("code") or {}).get("coding") or []:
            if isinstance(c, dict) and isinstance(s.get("key"), str):
                out[(c.get("system"), c.get("code"))] = s["key"]
        out.update(section_keys(s.get("sections") or []))
    return out


class Narrator:
    def __init__(self, templates: TemplateSources, language: str | None, layout_sections: list[Any]):
        self.issues: list[Issue] = []
        self.templates = templates
        self.language = language or DEFAULT_LANGUAGE
        texts = templates.texts.get(self.language)
        if texts is None:
            self.issues.append(error(IssueCode.NOT_FOUND, f"no texts for language '{self.language}' (have: "
                                     f"{', '.join(templates.languages) or 'none'})", "MAP_LANGUAGE",
                                     location=SourceLocation(f"{templates.files.get('composition.html', 'templates')}")))
            texts = templates.texts.get(DEFAULT_LANGUAGE) or {k: {} for k in ("labels", "codes", "units", "formats",
                                                                          "gender", "bands")}
        self.presenter = Presenter(texts, templates.scales)
        self.labels = texts.get("labels", {})
        self.library = TemplateLibrary(templates.sources, self.presenter.filters())
        for name, line, message in self.library.problems:
            self.issues.append(error(IssueCode.INVALID, message, "MAP_TEMPLATE_SYNTAX",
                                     location=SourceLocation(templates.files.get(name, name), line)))
        self.section_keys = section_keys(layout_sections)
        self._template_of: dict[tuple[Any, Any], str | None] = {}
        # every narrative states its language (lang and xml:lang, as the HL7 validator asks); Resource.language
        # is not set: without a terminology server the HL7 validator cannot check a BCP-47 code and warns
        self.div_open = f'<div xmlns="http://www.w3.org/1999/xhtml" lang="{self.language}" xml:lang="{self.language}">'

    def view(self, bundle: dict[str, Any]) -> DocumentView:
        return DocumentView(bundle, self.presenter, self.section_keys, self.library)

    def template_for(self, resource: dict[str, Any]) -> str | None:
        """`resource/<profile id>.html` of its first claimed profile that has one, else
        `resource/<type>.html`, else None (decided once per type and claims)."""
        claims: list[Any] = (resource.get("meta") or {}).get("profile") or []
        key = (resource.get("resourceType"), claims[0] if len(claims) == 1 else tuple(map(str, claims)))
        found = self._template_of.get(key, _UNDECIDED)
        if found is _UNDECIDED:
            found = self._template_of[key] = self._template_for(resource.get("resourceType"), claims)
        return found

    def _template_for(self, resource_type: Any, claims: Any) -> str | None:
        for claim in claims:
            name = f"resource/{str(claim).split('|')[0].rsplit('/', 1)[-1]}.html"
            if name in self.library:
                return name
        name = f"resource/{resource_type}.html"
        return name if name in self.library else None

    def apply(self, bundle: dict[str, Any]) -> list[Issue]:
        """Write every narrative of `bundle` (in place). Returns the problems (errors) met."""
        view = self.view(bundle)
        common = {"t": self.labels, "doc": view}
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in view.resources:
            name = self.template_for(r)
            if name is not None:
                groups.setdefault(name, []).append(r)
        issues: list[Issue] = []
        for name, resources in groups.items():
            try:
                texts = self.library.render_each(name, "r", resources, common)
            except TemplateProblem as exc:
                issues.append(self._failed(name, exc))
                continue
            for r, text in zip(resources, texts, strict=True):
                r["text"] = {"status": "generated", "div": canonical(self.div_open + text.strip() + XHTML_CLOSE)}
        for s in view.walk():
            try:
                text = self.library.render(s.template, {**common, "s": s})
            except TemplateProblem as exc:
                issues.append(self._failed(s.template, exc))
                continue
            s.source["title"] = s.title
            s.source["text"] = {"status": "generated", "div": canonical(self.div_open + text.strip() + XHTML_CLOSE)}
        if view.composition:
            try:
                text = self.library.render("composition.html", common)
            except TemplateProblem as exc:
                issues.append(self._failed("composition.html", exc))
            else:
                view.composition["text"] = {"status": "generated", "div": canonical(self.div_open + text.strip() + XHTML_CLOSE)}
        return issues

    def _failed(self, name: str, exc: TemplateProblem) -> Issue:
        return error(IssueCode.EXCEPTION, exc.summary, "MAP_TEMPLATE_RENDER",  # never the rendered data
                     location=SourceLocation(self.templates.files.get(name, name), exc.line))
