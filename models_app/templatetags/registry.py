"""Template helpers for the registry pages."""

import json
import shlex

import markdown as markdown_lib
import nh3
from django import template
from django.utils.safestring import mark_safe

from ..models import label_names

register = template.Library()


@register.filter
def markdown(text):
    """Render user-written Markdown to HTML that is safe to embed.

    Markdown passes raw HTML through, so its output is sanitised with nh3 (an allow-list of
    tags and attributes; scripts, event handlers and javascript: links are dropped).
    """
    if not text:
        return ""
    html = markdown_lib.markdown(text, extensions=["fenced_code", "tables", "sane_lists"])
    return mark_safe(nh3.clean(html))


@register.filter
def pretty_json(value):
    """Indented JSON for metadata blocks (the template escapes it)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


register.filter("label_names", label_names)


@register.simple_tag(takes_context=True)
def query(context, **changes):
    """The current query string with some parameters changed (``None`` or "" removes one).

    Any change resets the page, so a new filter never lands on a page that no longer exists.
    """
    params = context["request"].GET.copy()
    params.pop("page", None)
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.simple_tag(takes_context=True)
def page_query(context, number):
    """The current query string on another page."""
    params = context["request"].GET.copy()
    params["page"] = number
    return f"?{params.urlencode()}"


@register.simple_tag(takes_context=True)
def facet_query(context, name, value, selected):
    """The link of one facet value: choose it, or clear it when it is the chosen one."""
    return query(context, **{name: None if selected else value})


@register.filter
def score(value):
    """A score with up to four significant digits, or a dash when there is none."""
    return "—" if value is None else f"{value:.4g}"


@register.filter
def shquote(value):
    """Quote a value for a POSIX shell, for the copy-and-paste commands on the pages."""
    return shlex.quote(str(value))
