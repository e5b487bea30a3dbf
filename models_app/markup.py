"""User-written Markdown: safe HTML for pages, and the plain-text snippet lists show.

Rendering Markdown is the costly part of a catalogue page, so the snippet is computed once,
when a description is saved (``RegisteredModel.save``), and lists read the stored text.
"""

import html
import re

import markdown as markdown_lib
import nh3

SNIPPET_LENGTH = 180
# Blocks a one-line summary should not quote: headings repeat the name, tables and code cut badly.
_SKIPPED_BLOCKS = re.compile(r"<(h[1-6]|table|pre)\b[^>]*>.*?</\1>", re.DOTALL | re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_HEADING = re.compile(r"<(/?)h([1-6])\b", re.IGNORECASE)


def render_markdown(text, demote=0):
    """HTML that is safe to embed: Markdown passes raw HTML through, so the output goes through
    nh3's allow-list (scripts, event handlers and javascript: links are dropped).

    ``demote`` shifts headings down (``# Title`` becomes an h3 with 2), so a description's own
    headings rank below the page's title and sections.
    """
    if not text:
        return ""
    rendered = markdown_lib.markdown(text, extensions=["fenced_code", "tables", "sane_lists"])
    if demote:
        rendered = _HEADING.sub(lambda m: f"<{m[1]}h{min(6, int(m[2]) + demote)}", rendered)
    return nh3.clean(rendered)


def plain_snippet(text, length=SNIPPET_LENGTH):
    """The description's first prose as plain text, cut at a word, without headings, tables or
    code blocks."""
    if not text:
        return ""
    body = _SKIPPED_BLOCKS.sub(" ", markdown_lib.markdown(text, extensions=["fenced_code", "tables", "sane_lists"]))
    plain = " ".join(html.unescape(_TAG.sub(" ", body)).split())
    plain = re.sub(r" ([.,;:!?)])", r"\1", plain)
    if len(plain) <= length:
        return plain
    cut = plain[: length - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"
