"""A MkDocs hook for the API reference: Sphinx cross-reference roles in docstrings become plain code.

The docstrings of queuesim name other objects the Sphinx way (``:class:`Queue```, ``:meth:`fetch```,
``:func:`~queuesim.connect```). mkdocstrings renders Markdown, where such a role would show up as the literal
text ``:class:`` before the name. This hook drops the role and keeps the name as code; a leading ``~`` keeps
only the last part of a dotted name, as Sphinx does.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|mod|attr|data|exc|obj|const|ref):<code>(~?)([^<]*)</code>")


def _name(match: re.Match[str]) -> str:
    tilde, target = match.group(1), match.group(2)
    shown = target.rsplit(".", 1)[-1] if tilde else target
    return f"<code>{shown}</code>"


def on_page_content(html: str, **kwargs: Any) -> str:
    """Rewrite the roles of one rendered page."""
    return _ROLE.sub(_name, html)
