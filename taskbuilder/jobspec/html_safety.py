"""Participant-facing HTML without active content: no scripts, no event handlers, no ``javascript:`` URLs.

The task details, study description, instructions and ``rich_text`` blocks take "basic HTML" that Prolific
shows to participants (API doc §3.3 and §5.1 of ../shared/docs/prolific-api-current.md: ``description``
"supports some HTML"). A script there is never needed for an annotation task and is either a mistake or
text pasted from an untrusted source, so the spec refuses it. Parsing uses the standard library's
``html.parser`` (a tolerant HTML tokenizer, as browsers read tag soup). Browsers and that tokenizer disagree
on some tag soup (``<img/src=x/onerror=...>``, ``<!-->`` closing a comment at once, a tag left open at the end,
``<style>`` inside ``<math>``), so a second, coarser look at the raw text backs it up (character references are left alone: ``&lt;`` is text
to a browser, never markup): any tag opening (``<name``) of an active element, or an ``on...=`` attribute before the tag's ``>`` (or the end
of the text), is refused too, whatever the tokenizer made of it.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

ACTIVE_ELEMENTS = frozenset({"script", "iframe", "frame", "frameset", "object", "embed", "applet", "base", "meta",
                             "link", "form"})
"""Elements that run code, load another page or change where links go."""
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "xlink:href", "data", "poster", "background"})
_ACTIVE_SCHEMES = ("javascript:", "vbscript:", "data:text/html")
_ACTIVE_TAG_OPENING = re.compile(r"<\s*(" + "|".join(sorted(ACTIVE_ELEMENTS)) + r")(?![a-z0-9-])", re.I)
_HANDLER_IN_TAG = re.compile(r"<[a-z!/?][^>]*?[\s/\"'`;]on([a-z]+)\s*=", re.I | re.S)


class _Finder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ACTIVE_ELEMENTS:
            self.found.append(f"a <{tag}> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"an event handler attribute {name}= on <{tag}>")
            elif name in URL_ATTRIBUTES and value is not None and active_url(value):
                self.found.append(f"a {active_url(value)}: URL in {name}= of <{tag}>")

    handle_startendtag = handle_starttag


def active_url(url: str) -> str | None:
    """The scheme (``javascript``, ``vbscript``, ``data``) when `url` would run code when opened, else None.
    Spaces and control characters are ignored, as browsers ignore them there."""
    squeezed = "".join(ch for ch in url if ch > " ").lower()
    return squeezed.split(":", 1)[0] if squeezed.startswith(_ACTIVE_SCHEMES) else None


def active_content(text: str) -> list[str]:
    """What in `text` would run code in a participant's browser, e.g. ``["a <script> element",
    "an event handler attribute onerror= on <img>"]``; ``[]`` for plain text and basic HTML."""
    if "<" not in text:
        return []
    finder = _Finder()
    finder.feed(text)
    finder.close()
    for match in _ACTIVE_TAG_OPENING.finditer(text):
        finder.found.append(f"a <{match.group(1).lower()}> element")
    for match in _HANDLER_IN_TAG.finditer(text):
        finder.found.append(f"an event handler attribute on{match.group(1).lower()}=")
    return list(dict.fromkeys(finder.found))


def active_content_problems(values: dict[str, str]) -> list[tuple[str, str, str]]:
    """(field path, message, hint) for every field of `values` (path → participant-facing text) that holds
    active content."""
    problems = []
    for path, text in values.items():
        found = active_content(text)
        if path.endswith(".url") and active_url(text):
            found.append(f"a {active_url(text)}: URL")
        if found:
            problems.append((path, f"participant-facing text holds {', '.join(found)}",
                             "remove it: this text is shown to participants and takes basic HTML only (p, b, i, ul, "
                             "li, a href=https://...); to show the characters themselves write &lt;script&gt;"))
    return problems
