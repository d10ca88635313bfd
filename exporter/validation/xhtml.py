"""Narrative XHTML checks (FHIR htmlChecks(), txt-1/txt-2) without any third-party parser (layer L2).

The narrative must be one XHTML <div> in the XHTML namespace, use only the basic formatting
elements and attributes FHIR allows, carry no scripts, event handlers, forms or active content,
and have some non-whitespace content.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from functools import lru_cache

XHTML_NS = "http://www.w3.org/1999/xhtml"
ALLOWED_ELEMENTS = frozenset("""a abbr acronym b big blockquote br caption cite code col colgroup dd dfn div dl dt em
h1 h2 h3 h4 h5 h6 hr i img li ol p pre q samp small span strong sub sup table tbody td tfoot th thead tr tt ul var
""".split())
ALLOWED_ATTRIBUTES = frozenset("""abbr accesskey align alt axis bgcolor border cellhalign cellpadding cellspacing cellvalign
char charoff charset cite class colspan compact coords dir frame headers height href hreflang hspace id lang longdesc
name nowrap rel rev rowspan rules scope shape span src start style summary tabindex title type valign value vspace
width xml:lang xmlns""".split())
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def check_xhtml(text: str) -> str | None:
    """None when the narrative is acceptable, else the reason."""
    if not isinstance(text, str):
        return "narrative div must be a string"
    return _analyse(text)[0]


def forget() -> None:
    """Empty the cache of analysed divs (see Validator.forget)."""
    global _last
    _analysed.cache_clear()
    _last = (None, (None, False))


def has_text(text: str) -> bool:
    return _analyse(text)[1] if isinstance(text, str) else False


# A run of text between two tags that cannot change how the div parses: no markup or quote
# characters, no entity references, no characters XML forbids — and not only whitespace (a run of
# whitespace is kept as it is: whether a div has content depends on it).
# One pass of one pattern, linear in the div's length: a `>`, the run's leading whitespace, its first
# character with content, then the rest of its plain characters up to the next `<`. The first two
# parts cannot overlap (whitespace never has content) and both quantifiers are possessive, so an
# attempt scans the run after its `>` once and never backtracks; the runs are disjoint (the old single
# pattern that spanned `>…<` with nested quantifiers backtracked quadratically over a long unclosed
# run, and a look-ahead for the content character scanned every run twice).
_NOT_PLAIN = "<>&\"'\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
_RUN = re.compile(f">[^\\S{_NOT_PLAIN}]*+[^\\s{_NOT_PLAIN}][^{_NOT_PLAIN}]*+(?=<)")


_SHAPED = 4096  # longer divs (a section's list of thousands of entries) hardly share a shape: parsed as they are


def shape(text: str) -> str:
    """The div with each text run that has content replaced by "x". A run is the text between a `>`
    and the next `<` with no `>` in it; it is replaced when it has a character with content and only
    plain characters (no markup, quote, entity or character XML forbids)."""
    return _RUN.sub(">x", text)


def _analyse(text: str) -> tuple[str | None, bool]:
    """(problem or None, has content). Narratives of one export differ mostly in their text (a value,
    a date): the div's shape — each plain text run replaced by "x", or kept when only whitespace —
    is analysed once. A run holds no markup, quote or entity, so the shape parses exactly as the div
    does, with the same elements, attributes and non-empty texts. Only a clean verdict is taken from
    the shape: a problem is reported from the div itself (a parse error's position is the div's)."""
    global _last
    last = _last
    if last[0] is text:  # txt-2 right after txt-1 on the same div
        return last[1]
    found = None
    if len(text) <= _SHAPED and "<!" not in text and "<?" not in text:
        found = _analysed(shape(text))
    if found is None or found[0] is not None:
        found = _analysed(text) if len(text) <= _CACHED else _parsed(text)
    _last = (text, found)  # one reference, replaced whole: safe between threads
    return found


_last: tuple[str | None, tuple[str | None, bool]] = (None, (None, False))


_CACHED = 4 * _SHAPED  # longer divs are parsed uncached: the cache holds at most 4096 × 16 KiB of input


def _parsed(text: str) -> tuple[str | None, bool]:
    """(problem or None, has content) from one parse of `text`: a div, or a div's shape."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:  # never parsed (entity expansion): txt-1 reports it alone
        return "narrative must not contain DOCTYPE or entity declarations", True
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        return f"narrative is not well-formed XHTML: {exc}", False
    except UnicodeEncodeError as exc:  # a lone surrogate: no XML character (its position, never the text)
        return f"narrative is not well-formed XHTML: no character at position {exc.start}", False
    content = any(t.strip() for t in root.itertext()) or any(el.tag.endswith("}img") for el in root.iter()
                                                             if isinstance(el.tag, str))
    return _problem(root), content


_analysed = lru_cache(maxsize=4096)(_parsed)


def _problem(root: ET.Element) -> str | None:
    if root.tag != f"{{{XHTML_NS}}}div":
        return "narrative root must be <div xmlns=\"http://www.w3.org/1999/xhtml\">"
    allowed_tags: set[str] = set()  # tags met and allowed: a long list repeats <li> thousands of times
    for el in root.iter():
        tag = el.tag
        if tag in allowed_tags:
            if not el.attrib:
                continue
            local = tag.partition("}")[2]
        else:
            if not isinstance(tag, str):
                continue
            ns, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
            if ns != XHTML_NS:
                return f"narrative element <{local}> is not in the XHTML namespace"
            if local not in ALLOWED_ELEMENTS:
                return f"narrative element <{local}> is not allowed"
            allowed_tags.add(tag)
        for attr, value in el.attrib.items():
            name = "xml:lang" if attr == _XML_LANG else attr
            if name.lower().startswith("on") or name not in ALLOWED_ATTRIBUTES:
                return f"narrative attribute {name} on <{local}> is not allowed"
            if name in ("href", "src") and value.strip().lower().startswith(("javascript:", "vbscript:", "data:text/html")):
                return f"narrative attribute {name} on <{local}> has an active URL"
    return None


