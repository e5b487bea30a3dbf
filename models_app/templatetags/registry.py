"""Template helpers for the registry pages."""

import json
import shlex

from django import template
from django.utils.safestring import mark_safe

from ..markup import render_markdown
from ..models import label_names

register = template.Library()


@register.filter
def markdown(text, demote=0):
    """User-written Markdown as safe HTML (see ``markup.render_markdown``); ``|markdown:2`` demotes
    its headings by two levels."""
    return mark_safe(render_markdown(text, demote=int(demote or 0)))


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


@register.filter
def compact_count(value):
    """1234567 as "1.2M": parameter counts at a glance."""
    if value is None:
        return "—"
    for limit, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "k")):
        if value >= limit:
            return f"{value / limit:.3g}{suffix}"
    return str(value)


@register.filter
def best_score(variants):
    """The highest score among variants (None when none has one)."""
    scores = [a.score for a in variants if a.score is not None]
    return max(scores) if scores else None


ALIAS_EVENT_WORDS = {
    "set": "set {alias} to {to}",
    "move": "moved {alias} from {frm} to {to}",
    "rollback": "rolled {alias} back from {frm} to {to}",
    "delete": "deleted {alias} (it pointed to {frm})",
}
AUDIT_VERBS = {
    "create": "created",
    "update": "changed",
    "delete": "deleted",
    "upload": "uploaded",
    "import": "imported",
    "alias_set": "set alias",
    "alias_move": "moved alias",
    "alias_rollback": "rolled back alias",
    "alias_delete": "deleted alias",
}


@register.filter
def alias_event_text(event):
    """An alias move in words: "alice moved production from 2.1 to 2.0: regression on NPU"."""
    words = ALIAS_EVENT_WORDS.get(event.action, "changed {alias}").format(
        alias=event.alias, frm=event.from_version_label or "nothing", to=event.to_version_label or "nothing"
    )
    text = f"{event.user or 'someone'} {words}"
    return f"{text}: {event.reason}" if event.reason else text


@register.filter
def audit_text(entry):
    """An audit entry in words: "alice uploaded person-detection:2 FP16/GPU/openvino"."""
    return f"{entry.actor_name or 'someone'} {AUDIT_VERBS.get(entry.action, entry.action)} {entry.object_repr}"


@register.filter
def shown_value(value):
    """A changed field's value as the activity log shows it: a dash for nothing."""
    return "—" if value in (None, "", [], {}) else value


@register.filter
def previous_target(events, alias_name):
    """The version a roll back of ``alias_name`` would return to, from the recent events shown
    (the ``from`` side of its latest event, as ``services.rollback_alias`` decides); "" when unknown."""
    latest = next((e for e in events if e.alias == alias_name), None)
    return latest.from_version_label if latest is not None else ""
