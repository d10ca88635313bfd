"""Formats of a validated resource (layer L2): FHIR JSON and FHIR XML, by media type.

`exporter.formats.xml` is the XML writer/reader (the one door to lxml); `exporter.formats.media` maps
media types and `_format` values to them.
"""
