"""Open311's two formats, and its error format.

XML is built with the standard library (``xml.etree``), schemaless and without a namespace, as
the specification asks: a root element (``services``, ``service_definition``,
``service_requests``, ``errors``, ``discovery``), a list as one element per item (``service``,
``attribute``, ``value``, ``request``, ``error``, ``endpoint``, ``format``), ``null`` as an empty
element, booleans as ``true``/``false``; UTF-8 with the XML declaration. JSON is the same data
by the Spark convention: the root element's list is the top-level array.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from xml.etree import ElementTree as ET

import orjson
from fastapi.responses import Response

Format = Literal["json", "xml"]
JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"
# The element of each item of a list, by the list's element
ITEM = {
    "services": "service",
    "attributes": "attribute",
    "values": "value",
    "service_requests": "request",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}
# Characters XML 1.0 cannot hold (a client may have sent them in a description)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, v in value.items():
            _fill(ET.SubElement(element, key), v)
    elif isinstance(value, list | tuple):
        tag = ITEM.get(element.tag, "item")
        for v in value:
            _fill(ET.SubElement(element, tag), v)
    elif value is not None:
        element.text = _text(value)


def to_xml(root: str, content: Any) -> bytes:
    element = ET.Element(root)
    _fill(element, content)
    body = ET.tostring(element, encoding="unicode", short_empty_elements=True)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body.encode("utf-8")


def render(
    fmt: Format,
    root: str,
    content: Any,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """``content`` (a list for the list roots, else an object) in ``fmt``."""
    if fmt == "xml":
        return Response(to_xml(root, content), status, headers, media_type=XML_TYPE)
    return Response(orjson.dumps(content), status, headers, media_type=JSON_TYPE)


def fmt_of(path: str) -> Format:
    """The format a path asks for (its suffix); JSON when it names none."""
    return "xml" if path.endswith(".xml") else "json"


def errors(
    fmt: Format,
    status: int,
    entries: list[tuple[int, str]],
    headers: dict[str, str] | None = None,
) -> Response:
    """The specification's error answer: ``[{"code", "description"}]`` or
    ``<errors><error><code/><description/></error></errors>``."""
    body = [{"code": code, "description": description} for code, description in entries]
    return render(fmt, "errors", body, status=status, headers=headers)
