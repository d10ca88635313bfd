"""Attachments (layer L2): when an Attachment carries its `data`, a stated `size` is the number of
bytes of that data and a stated `hash` is the base64 SHA-1 of it (R4 Attachment)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from exporter.validation import messages as M
from exporter.validation.model import Member
from exporter.validation.rules import CHILDREN, Rule, rule


def _data(att: Any) -> bytes | None:
    data = att.get("data") if isinstance(att, dict) else None
    if not isinstance(data, str):
        return None
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        return None  # the primitive check reports it


def findings(att: Any) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(att, dict) or ("size" not in att and "hash" not in att):
        return []
    data = _data(att)
    if data is None:
        return []
    out: list[tuple[str, dict[str, Any]]] = []
    size = att.get("size")
    if isinstance(size, int) and not isinstance(size, bool) and size != len(data):
        out.append((M.ATTACHMENT_SIZE, {}))
    stated = att.get("hash")
    if isinstance(stated, str):
        actual = base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")  # noqa: S324 (R4 says SHA-1)
        if "".join(stated.split()) != actual:
            out.append((M.ATTACHMENT_HASH, {}))
    return out


@rule
class AttachmentData(Rule):
    messages = (M.ATTACHMENT_SIZE, M.ATTACHMENT_HASH)
    stage = CHILDREN + 20

    def applies(self, m: Member) -> bool:
        return m.type.code == "Attachment"

    def holds(self, value: Any, m: Member, ctx: Any) -> bool:
        return not findings(value)

    def report(self, value: Any, m: Member, path: str, ctx: Any) -> None:
        for mid, args in findings(value):
            ctx.add(mid, path, **args)
