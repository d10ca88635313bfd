"""The human-readable export (layer L3): HTML and PDF/A-3b rendered from a *validated* document
Bundle with the same templates as its narratives (mappings/templates/document.html includes them).

    renderer = Renderer(exporter.engine.narrator)
    html = renderer.html(bundle)
    pdf = renderer.pdf(bundle, [Attachment("bundle.fhir.json", "application/fhir+json", raw_json)])
"""
