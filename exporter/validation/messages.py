"""The validator's message table (layer L2): every message id with its FHIR issue code, severity and
text, in one place. Ids are stable: tests, docs and API clients may rely on them. A text never
quotes a value of the document (a code, a display, a reference, a measured value: patient data);
it names definitions (profiles, code systems, ValueSets, elements) only.

    M.issue(M.CARD_MIN, "Patient.name", path="Patient.name", min=1, count=0)   # -> Issue

A row's text is a `str.format` template; an id that covers several situations has one template per
variant (`variant=` picks one). The severity is the row's unless the row says it varies (an
invariant's severity comes from its constraint; an unresolved reference is an error inside a
Bundle and a warning inside a document). `tests/unit/validation/test_messages.py` fails on an id
used anywhere in `exporter/` without a row, and on a row no code uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.issues import Issue, IssueCode, Severity

_C = IssueCode


@dataclass(frozen=True)
class Message:
    code: IssueCode
    severity: Severity
    template: str | dict[str, str]  # one text, or one per variant
    varies: bool = False  # the caller may give the severity (see the module docstring)

    def text(self, variant: str | None, args: dict[str, Any]) -> str:
        template = self.template if isinstance(self.template, str) else self.template[variant or "default"]
        return template.format(**args)


TABLE: dict[str, Message] = {}


def _row(mid: str, code: IssueCode, severity: str, template: str | dict[str, str], varies: bool = False) -> str:
    TABLE[mid] = Message(code, Severity(severity), template, varies)
    return mid


# -- input and JSON shape (structure.py, validator.py) -------------------------------------------
READ = _row("VAL_READ", _C.NOT_FOUND, "fatal", "cannot read file: {reason}")
NOT_JSON = _row("VAL_NOT_JSON", _C.STRUCTURE, "fatal", "{reason}")
NOT_OBJECT = _row("VAL_NOT_OBJECT", _C.STRUCTURE, "error", {
    "default": "a resource must be a JSON object, not {kind}",
    "top": "a FHIR resource must be a JSON object, not {kind}"}, varies=True)
TOO_DEEP = _row("VAL_TOO_DEEP", _C.TOO_COSTLY, "fatal", {
    "default": "nesting deeper than {limit} levels",
    "recursion": "input nested too deeply"})
TOO_LARGE = _row("VAL_TOO_LARGE", _C.TOO_COSTLY, "error", {
    "default": "validation stopped: {reason}",
    "bytes": "input exceeds {limit} bytes"}, varies=True)
NO_RESOURCE_TYPE = _row("VAL_NO_RESOURCE_TYPE", _C.STRUCTURE, "error", "resource has no resourceType")
UNKNOWN_RESOURCE_TYPE = _row("VAL_UNKNOWN_RESOURCE_TYPE", _C.NOT_SUPPORTED, "error", "unknown resourceType '{rt}'")
UNKNOWN_ELEMENT = _row("VAL_UNKNOWN_ELEMENT", _C.STRUCTURE, "error", "unknown element '{key}' in {where}{hint}")
JSON_ARRAY_EXPECTED = _row("VAL_ARRAY_EXPECTED", _C.STRUCTURE, "error", "{key} must be a JSON array (max > 1)")
JSON_ARRAY_UNEXPECTED = _row("VAL_ARRAY_UNEXPECTED", _C.STRUCTURE, "error", "{key} must not be a JSON array (max 1)")
JSON_NULL = _row("VAL_NULL", _C.STRUCTURE, "error", {
    "default": "{key}: null is not allowed",
    "companion": "{key}: null without a value at the same position"})
EMPTY_ARRAY = _row("VAL_EMPTY_ARRAY", _C.STRUCTURE, "error", "{key}: empty arrays are not allowed")
EMPTY_OBJECT = _row("VAL_EMPTY_OBJECT", _C.STRUCTURE, "error",
                    "empty object: an element must have a value or children (ele-1)")
WRONG_JSON_TYPE = _row("VAL_WRONG_JSON_TYPE", _C.STRUCTURE, "error", {
    "default": "{key} must be a JSON object ({type}), not {kind}",
    "companion": "{key} must be an object with id/extension"})
TYPE_NOT_ALLOWED = _row("VAL_TYPE_NOT_ALLOWED", _C.STRUCTURE, "error", "a {rt} is not allowed here, only {type}")
# -- values (primitives.py, fixed_pattern.py, bounds.py, urls.py) --------------------------------
PRIMITIVE_INVALID = _row("VAL_PRIMITIVE", _C.VALUE, "error", "{type} value {reason}")
FIXED_MISMATCH = _row("VAL_FIXED", _C.VALUE, "error", "the value must be exactly {fixed} (fixed in {sd})")
PATTERN_MISMATCH = _row("VAL_PATTERN", _C.VALUE, "error",
                        "the value does not match the pattern {pattern} required by {sd}")
MIN_VALUE = _row("VAL_MIN_VALUE", _C.VALUE, "error", "the value is below the minimum {bound} of {path}")
MAX_VALUE = _row("VAL_MAX_VALUE", _C.VALUE, "error", "the value is above the maximum {bound} of {path}")
CANONICAL_RELATIVE = _row("VAL_CANONICAL_RELATIVE", _C.VALUE, "error",
                          "a canonical URL must be absolute (or a #fragment reference to a contained resource)")
ATTACHMENT_SIZE = _row("VAL_ATTACHMENT_SIZE", _C.VALUE, "error",
                       "Attachment.size is not the size of its data")
ATTACHMENT_HASH = _row("VAL_ATTACHMENT_HASH", _C.VALUE, "error",
                       "Attachment.hash is not the SHA-1 of its data (base64)")
IDENTIFIER_URI = _row("VAL_IDENTIFIER_URI", _C.VALUE, "error",
                      "an identifier with system urn:ietf:rfc:3986 must have an absolute URI as value")
FRAGMENT_UNRESOLVED = _row("VAL_FRAGMENT_UNRESOLVED", _C.NOT_FOUND, "error", {
    "default": "the #reference names no contained resource of this resource",
    "container": "'#' names the resource containing this one, and this resource is not contained"})
EXAMPLE_URL = _row("VAL_EXAMPLE_URL", _C.VALUE, "error", "example URLs are not allowed here: nothing is known at "
                   "that address; use the real canonical of the resource")
# -- cardinality.py, slicing.py ------------------------------------------------------------------
CARD_MIN = _row("VAL_CARD_MIN", _C.REQUIRED, "error", "{path}: minimum required = {min}, but only found {count}")
CARD_MAX = _row("VAL_CARD_MAX", _C.STRUCTURE, "error", {
    "default": "{path}: maximum allowed = {max}, but found {count}",
    "prohibited": "{path} is prohibited (max 0) in this profile, but found {count}"})
SLICE_MIN = _row("VAL_SLICE_MIN", _C.REQUIRED, "error",
                 "slice '{slice}' of {path} requires at least {min} item(s), found {count}")
SLICE_MAX = _row("VAL_SLICE_MAX", _C.STRUCTURE, "error",
                 "slice '{slice}' of {path} allows at most {max} item(s), found {count}")
SLICE_CLOSED = _row("VAL_SLICE_CLOSED", _C.STRUCTURE, "error",
                    "{path} is closed: this item matches none of the slices {slices}")
SLICE_ORDER = _row("VAL_SLICE_ORDER", _C.STRUCTURE, "error", "{path}: slice '{slice}' is out of the required order")
SLICE_OPEN_AT_END = _row("VAL_SLICE_OPEN_AT_END", _C.STRUCTURE, "error",
                         "{path}: items not in a slice must come after all sliced items")
SLICE_DISCRIMINATOR = _row("VAL_SLICE_DISCRIMINATOR", _C.PROCESSING, "warning", "{path}: {problem}")
# -- terminology (binding.py, codes.py) ----------------------------------------------------------
BINDING_REQUIRED = _row("VAL_BINDING_REQUIRED", _C.CODE_INVALID, "error", "{codes} is not in the required ValueSet {vs}")
BINDING_EXTENSIBLE = _row("VAL_BINDING_EXTENSIBLE", _C.CODE_INVALID, "warning",
                          "{codes} is not in the extensible ValueSet {vs}")
BINDING_UNCHECKED = _row("VAL_BINDING_UNCHECKED", _C.NOT_SUPPORTED, "warning", "cannot check {codes} against {vs}: {why}")
BINDING_NO_CODE = _row("VAL_BINDING_NO_CODE", _C.CODE_INVALID, "error", "no code given for the required binding to {vs}")
CODE_UNKNOWN = _row("VAL_CODE_UNKNOWN", _C.CODE_INVALID, "error", "unknown code in the CodeSystem {system}")
CODE_SYSTEM_SUPPLEMENT = _row("VAL_CODE_SYSTEM_SUPPLEMENT", _C.INVALID, "error",
                              "a CodeSystem supplement cannot be the system of a Coding: use the system it supplements")
DISPLAY_WRONG = _row("VAL_DISPLAY_WRONG", _C.CODE_INVALID, "error", "wrong display for a code of {system}",
                     varies=True)
# -- extensions.py -------------------------------------------------------------------------------
EXTENSION_UNKNOWN = _row("VAL_EXTENSION_UNKNOWN", _C.NOT_FOUND, "error", {
    "default": "unknown extension {url}: no definition is loaded for it",
    "sub": "sub-extension url '{url}' is not defined by the enclosing extension"}, varies=True)
EXTENSION_CONTEXT = _row("VAL_EXTENSION_CONTEXT", _C.STRUCTURE, "error",
                         "extension {url} is not allowed on {host} (its contexts: {contexts})")
EXTENSION_NO_URL = _row("VAL_EXTENSION_NO_URL", _C.REQUIRED, "error", "extension without url")
# -- invariants.py -------------------------------------------------------------------------------
INVARIANT = _row("VAL_INVARIANT", _C.INVARIANT, "error", "constraint {key} failed: {human}", varies=True)
INVARIANT_ERROR = _row("VAL_INVARIANT_UNEVALUABLE", _C.NOT_SUPPORTED, "warning", {
    "default": "constraint {key} could not be evaluated: {error}",
    "compile": "constraint {key} could not be compiled: {error}"})
# -- references.py, bundle.py --------------------------------------------------------------------
REFERENCE_FORMAT = _row("VAL_REFERENCE_FORMAT", _C.VALUE, "error", "the reference {problem}")
REFERENCE_UNRESOLVED = _row("VAL_REFERENCE_UNRESOLVED", _C.NOT_FOUND, "error", {
    "default": "reference {ref} does not resolve to an entry of this Bundle",
    "document": "reference {ref} does not resolve inside the document"}, varies=True)
REFERENCE_TARGET_TYPE = _row("VAL_REFERENCE_TARGET_TYPE", _C.STRUCTURE, "error", {
    "default": "reference to a {rt} where only {types} is allowed",
    "declared": "reference to {rt} where only {types} is allowed"})
REFERENCE_TARGET_PROFILE = _row("VAL_REFERENCE_TARGET_PROFILE", _C.STRUCTURE, "error",
                                "referenced {rt} does not conform to {profiles}")
BUNDLE_RULE = _row("VAL_BUNDLE", _C.INVALID, "error",
                   "fullUrl {full_url} does not match the resource's type/id {rt}/{id}")
BUNDLE_LINK_DUPLICATE = _row("VAL_BUNDLE_LINK_DUPLICATE", _C.INVALID, "error",
                             "this link relation may occur only once in the Bundle")
BUNDLE_LINK_PAGING = _row("VAL_BUNDLE_LINK_PAGING", _C.INVALID, "error",
                          "paging links (first, previous, next, last) belong to searchset and history Bundles only")
BUNDLE_FULLURL_MISSING = _row("VAL_BUNDLE_FULLURL_MISSING", _C.REQUIRED, "error",
                              "an entry of a {type} Bundle must have a fullUrl, the identity of its resource")
# -- contained.py --------------------------------------------------------------------------------
CONTAINED_ID_MISSING = _row("VAL_CONTAINED_ID_MISSING", _C.INVALID, "error",
                            "a contained resource must have an id (the #id references to it use)")
CONTAINED_ID_DUPLICATE = _row("VAL_CONTAINED_ID_DUPLICATE", _C.INVALID, "error",
                              "another resource contained in the same resource has this id")
# -- profiles (validator.py), questionnaire.py ---------------------------------------------------
PROFILE_UNKNOWN = _row("VAL_PROFILE_UNKNOWN", _C.NOT_FOUND, "error", "profile {profile} is not known to this validator")
PROFILE_WRONG_TYPE = _row("VAL_PROFILE_WRONG_TYPE", _C.INVALID, "error", "profile {profile} is for {sd_type}, not {rt}")
VITAL_SIGNS = _row("VAL_VITAL_SIGNS", _C.INFORMATIONAL, "information",
                   "a vital sign must conform to {profile} (FHIR R4 vital signs): its problems follow")
QUESTIONNAIRE = _row("VAL_QUESTIONNAIRE", _C.VALUE, "error", {
    "unknown": "questionnaire {url} is not known, so the answers are not checked against it",
    "required": "required item '{link}' of {url} has no answer",
    "link": "linkId '{link}' is not an item of the questionnaire",
    "repeats": "item '{link}' does not repeat but has {count} answers",
    "type": "item '{link}' of type {type} cannot be answered with {key}",
    "option": "the code is not in the set of permitted values of item '{link}'",
    "value_set": "the code is not in {vs}"}, varies=True)


def issue(mid: str, expression: str = "", severity: str | None = None, variant: str | None = None,
          **args: Any) -> Issue:
    """The Issue of row `mid` with its text filled in (`severity` only where the row varies)."""
    row = TABLE[mid]
    sev = Severity(severity) if severity is not None else row.severity
    return Issue(sev, row.code, row.text(variant, args), mid, expression=(expression,) if expression else ())
