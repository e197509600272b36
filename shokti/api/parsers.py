"""Request bodies read safely: a size limit before reading, a nesting limit before parsing, clean text after.

The standard library's JSON parser recurses once per `[` or `{`: a body of a few thousand of them
raises RecursionError, which no handler expects (a 500 and a traceback in the log for every such
request). So the nesting depth is measured on the raw bytes first (a regular expression skips
strings; bodies with fewer brackets than the limit skip even that), and the body is parsed only when
it is shallow enough. Bodies over `DATA_UPLOAD_MAX_MEMORY_SIZE` are refused (413) without being read
whole. After parsing, text that PostgreSQL cannot store (NUL characters, lone UTF-16 surrogates from
`\\u` escapes) is refused (400, naming the fields) instead of failing at the INSERT.

`json_loads(raw)` is the one JSON reader for request bodies: DRF views get it through `JSONParser`
(settings.REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]); plain views that read a body call it directly.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from django.http import QueryDict
from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError

from shokti.api.exceptions import RequestTooLarge

DEFAULT_MAX_DEPTH = 32
# A JSON string (unrolled: one pass per run of plain characters, not one alternation per character).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_OPENERS = frozenset(b"[{")
# \u0000 or a \uD800-\uDFFF escape: only then can the parsed text hold what PostgreSQL refuses.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def max_body_bytes() -> int:
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)


def max_depth() -> int:
    return int(getattr(settings, "API_JSON_MAX_DEPTH", DEFAULT_MAX_DEPTH))


def json_depth_exceeds(raw: bytes, limit: int) -> bool:
    """True when arrays/objects in `raw` nest deeper than `limit` (brackets inside strings do not count)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    # The strings out, then everything but the brackets: what is left is the document's skeleton.
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        if byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


NUL_MESSAGE = "Null characters are not allowed."
SURROGATE_MESSAGE = "Unpaired surrogate characters are not allowed."


def _unstorable_text(value: Any) -> dict[str, list[str]]:
    """{"dotted.path": [message]} for each string (or key) of a parsed document that holds a NUL or a lone surrogate."""
    errors: dict[str, list[str]] = {}
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                errors.setdefault(path or "non_field_errors", []).append(NUL_MESSAGE)
            else:
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    errors.setdefault(path or "non_field_errors", []).append(SURROGATE_MESSAGE)
        elif isinstance(item, dict):
            for key, inner in item.items():
                inner_path = f"{path}.{key}" if path else str(key)
                stack.append((path, key))
                stack.append((inner_path, inner))
        elif isinstance(item, list):
            stack.extend((f"{path}.{index}" if path else str(index), inner) for index, inner in enumerate(item))
    return errors


def json_loads(raw: bytes | str, *, encoding: str = "utf-8") -> Any:
    """Parse a request body: ParseError (400) when malformed, too deep or not UTF-8; ValidationError (400, the
    offending fields) for text holding NULs or lone surrogates; RequestTooLarge (413) when over the size limit."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    limit = max_body_bytes()
    if limit and len(raw) > limit:
        raise RequestTooLarge()
    depth = max_depth()
    if json_depth_exceeds(raw, depth):
        raise ParseError(f"JSON parse error - nested deeper than {depth} levels.")
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise ParseError(f"JSON parse error - the body is not valid {encoding}.") from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        # RecursionError cannot happen after the depth check; kept so a lower interpreter limit cannot 500.
        raise ParseError(f"JSON parse error - {error}") from None
    if _SUSPECT_ESCAPE.search(raw):
        errors = _unstorable_text(data)
        if errors:
            # Field errors, like a serializer's: PostgreSQL can store neither in text or JSON columns.
            raise ValidationError(errors)
    return data


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def read_limited(stream, *, limit: int) -> bytes:
    """Read a whole body, but never more than `limit` + 1 bytes: RequestTooLarge past the limit."""
    if not limit:
        return stream.read()
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise RequestTooLarge()
    return raw


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser through `json_loads`: size and depth limits, UTF-8 and storable text enforced."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        if stream is None:
            return {}
        return json_loads(read_limited(stream, limit=max_body_bytes()), encoding=encoding)


class FormParser(parsers.FormParser):
    """DRF's form parser (provider webhooks post forms), refusing NUL characters in any value."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = read_limited(stream, limit=max_body_bytes()) if stream is not None else b""
        return form_storable(QueryDict(raw, encoding=encoding))


def form_storable(data: QueryDict) -> QueryDict:
    """`data`, or ValidationError (400) naming each field whose name or value holds a NUL character."""
    errors = {
        key.replace("\x00", "?"): [NUL_MESSAGE]
        for key, values in data.lists()
        if "\x00" in key or any("\x00" in value for value in values)
    }
    if errors:
        raise ValidationError(errors)
    return data
