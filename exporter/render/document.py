"""The human-readable document: HTML from the validated Bundle, PDF/A-3b from that HTML (layer L3).

Both come from mappings/templates/document.html, which includes the very templates that wrote the
Bundle's narratives (composition.html, section/*.html, resource/*.html): what a person reads in the
PDF is what the narratives say, plus charts of the vital-sign series. The Bundle is read, never
changed.
"""

from __future__ import annotations

from typing import Any

from exporter.engine.templating import TemplateProblem
from exporter.issues import Issue, IssueCode, SourceLocation, error
from exporter.narrative.narrator import Narrator
from exporter.render.charts import charts_for
from exporter.render.pdf import Attachment, html_to_pdf

CHART_SECTIONS = ("vital-signs",)  # section keys whose Observations are drawn as charts


class RenderError(Exception):
    """The document could not be rendered (a template problem): carries the issues."""

    def __init__(self, issues: list[Issue]):
        self.issues = issues
        super().__init__("; ".join(i.message for i in issues))


class Renderer:
    def __init__(self, narrator: Narrator):
        self.narrator = narrator

    def html(self, bundle: dict[str, Any], attachments: list[Attachment] = ()) -> str:  # type: ignore[assignment]
        view = self.narrator.view(bundle)
        p = self.narrator.presenter
        charts = {s.key: charts_for(s.entries, s.key, p, self.narrator.labels)
                  for s in view.walk() if s.key in CHART_SECTIONS}
        try:
            return self.narrator.library.render("document.html", {
                "doc": view, "t": self.narrator.labels, "language": self.narrator.language, "charts": charts,
                "attachments": [a.name for a in attachments]})
        except TemplateProblem as exc:
            files = self.narrator.templates.files
            raise RenderError([error(IssueCode.EXCEPTION, str(exc), "RENDER_TEMPLATE",
                                     location=SourceLocation(files.get("document.html", "document.html"), exc.line))]) from exc

    def pdf(self, bundle: dict[str, Any], attachments: list[Attachment]) -> bytes:
        """PDF/A-3b of the Bundle, with `attachments` (the Bundle itself as JSON, …) embedded."""
        return html_to_pdf(self.html(bundle, attachments), attachments)
