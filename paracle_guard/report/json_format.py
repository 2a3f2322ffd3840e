"""The JSON report: the Report models as ``schemas/report.schema.json`` describes them.

Every key is always present; an unknown optional value (a location's line, a
finding's fix) is null rather than missing, so consumers index without guards.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic_core import PydanticSerializationError

from paracle_guard.report.models import Report

_SURROGATE = re.compile("[\ud800-\udfff]")


def dumps(document: Any) -> str:
    """Indented JSON, non-ASCII kept readable, always encodable as UTF-8.

    Messages may quote undecodable input as lone surrogates; ``ensure_ascii``
    would escape them but also every accented letter, so only they are escaped
    (``\\udcff`` is valid JSON and reads back as the same string).
    """
    text = json.dumps(document, indent=2, ensure_ascii=False)
    return _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text) + "\n"


def render_json(report: Report) -> str:
    try:
        # pydantic's serialiser is several times faster than json's indenting
        # encoder, and writes the same text.
        return report.model_dump_json(indent=2) + "\n"
    except PydanticSerializationError:
        # It refuses lone surrogates (undecodable input quoted in a message).
        return dumps(report.model_dump(mode="json"))
