"""The compare page's view of ``reads.compare``: display rows and a score-against-size chart.

``reads.compare`` (also behind ``/api/v1/compare/``) does the comparing; this module only
turns its answer into what the page shows: labelled rows of display values with their
``differs`` flag, the versions' variants lined up, and the points of the chart.
"""

import json
import math
import uuid
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.http import Http404
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from . import reads
from .models import Artifact, ModelVersion

MIN_ITEMS, MAX_ITEMS = 2, 4  # what fits side by side on a page (the API takes more)
SIZE_UNITS = ["bytes", "KB", "MB", "GB", "TB"]
# One colour per precision, the same on every chart (colour-blind-safe Okabe-Ito palette).
PRECISION_COLOURS = {
    "FP32": "#0072B2",
    "FP16": "#E69F00",
    "BF16": "#CC79A7",
    "FP8": "#56B4E9",
    "INT8": "#009E73",
    "INT4": "#D55E00",
    "MIXED": "#7f7f7f",
}
FIELD_LABELS = {
    "registered_model": "Model",
    "version": "Version",
    "status": "Status",
    "description": "Description",
    "architecture": "Architecture",
    "category": "Category",
    "labels": "Labels",
    "project_id": "Geti project id",
    "project_name": "Geti project",
    "origin": "Origin",
    "tags": "Tags",
    "provenance": "Provenance",
    "derived_from": "Derived from",
    "overview": "Overview",
    "created_by": "Created by",
    "created_at": "Created",
    "artifact_count": "Variants",
    "total_size": "Total size",
    "precision": "Precision",
    "target_device": "Target device",
    "target_device_type": "Device type",
    "format": "Format",
    "score": "Score",
    "size": "Size",
    "sha256": "sha256",
    "external_id": "External id",
    "optimization_capabilities": "Optimisations",
    "inputs": "Inputs (from the file)",
    "outputs": "Outputs (from the file)",
    "weight_precision": "Weights (from the file)",
}


# Fields that tell the items apart by nature: highlighting them would say nothing.
ALWAYS_DIFFERENT = {"version", "created_at", "created_by", "external_id", "sha256"}
KEY_VALUE_FIELDS = {"tags", "provenance", "overview", "optimization_capabilities"}


class ComparisonError(ValueError):
    """The selection cannot be compared (wrong number of items, bad or unknown ids)."""


@dataclass
class Item:
    label: str
    url: str


@dataclass
class Row:
    field: str
    values: list
    differs: bool


@dataclass
class Point:
    precision: str
    size: int
    score: float
    label: str
    format: str = ""


@dataclass
class Comparison:
    kind: str
    items: list
    rows: list
    variants: list = field(default_factory=list)
    signatures: list = field(default_factory=list)
    points: list = field(default_factory=list)
    unscored: list = field(default_factory=list)

    @property
    def chart(self):
        return score_size_chart(self.points)


def parse_ids(values):
    """Ids from ``?versions=a,b`` or ``?versions=a&versions=b`` (checkbox forms send the latter)."""
    ids = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                ids.append(uuid.UUID(part))
            except ValueError:
                raise ComparisonError(f"{part!r} is not a valid id.") from None
    unique = list(dict.fromkeys(ids))
    if not MIN_ITEMS <= len(unique) <= MAX_ITEMS:
        raise ComparisonError(f"Choose {MIN_ITEMS} to {MAX_ITEMS} items to compare; got {len(unique)}.")
    return unique


def _score(value):
    return "—" if value is None else f"{value:.4g}"


def _display(name, value):
    """One value of a compared field as the page shows it."""
    if value in (None, "", [], {}):
        return "—"
    if name in ("size", "total_size"):
        return filesizeformat(value)
    if name == "score":
        return _score(value)
    if name == "created_at":
        return parse_datetime(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def compare(kind, ids):
    """Compare versions (``kind="versions"``) or variants (``kind="artifacts"``) by id, in the
    order given. Raises ComparisonError for a selection that cannot be compared."""
    if kind not in ("versions", "artifacts"):
        raise ComparisonError("Choose versions or variants to compare.")
    try:
        result = reads.compare(**{kind: [str(i) for i in parse_ids(ids)]})
    except ValidationError as exc:
        raise ComparisonError(" ".join(exc.messages)) from exc
    except Http404 as exc:
        raise ComparisonError(str(exc)) from exc
    fields = {row["field"]: row for row in result["fields"]}
    names, versions = fields["registered_model"]["values"], fields["version"]["values"]
    items = []
    for item, name, version in zip(result["items"], names, versions):
        url = reverse("models_app:version-detail", kwargs={"name": name, "version": version})
        items.append(Item(item["label"], url + (f"#variant-{item['id']}" if kind == "artifacts" else "")))
    links = _derived_links(kind, fields.get("derived_from", {}).get("values", []))
    rows = [
        Row(
            FIELD_LABELS.get(row["field"], row["field"]),
            _cells(row, links),
            row["differs"] and row["field"] not in ALWAYS_DIFFERENT,
        )
        for row in result["fields"]
    ]
    comparison = Comparison(kind, items, rows)
    # Points are labelled by version (and model, when the items span several) and device.
    one_model = len(set(names)) == 1
    tags = [version if one_model else f"{name}:{version}" for name, version in zip(names, versions)]
    if kind == "versions":
        for row in result["variants"]:
            precision, device, fmt = row["variant"].split("/", 2)
            cells = [
                "—"
                if c is None
                else format_html(
                    "{}{} · {}{}",
                    _score(c["score"]),
                    _delta_html("score", score_delta) if i else "",
                    filesizeformat(c["size"]),
                    _delta_html("size", size_delta) if i else "",
                )
                for i, (c, score_delta, size_delta) in enumerate(
                    zip(row["values"], row["score_deltas"], row["size_deltas"])
                )
            ]
            comparison.variants.append(Row(row["variant"], cells, row["differs"]))
            comparison.signatures.append(
                Row(row["variant"], [_signature(c) for c in row["values"]], row["signature_differs"])
            )
            for tag, cell in zip(tags, row["values"]):
                if cell is not None:
                    _add_point(comparison, precision, cell["size"], cell["score"], f"{tag} {device} {fmt}", fmt)
    else:
        for i, tag in enumerate(tags):
            _add_point(
                comparison,
                fields["precision"]["values"][i],
                fields["size"]["values"][i],
                fields["score"]["values"][i],
                f"{tag} {fields['target_device']['values'][i]} {fields['format']['values'][i]}",
                fields["format"]["values"][i],
            )
    return comparison


def _signature(cell):
    """A variant's inputs and outputs as the file was inspected to have them."""
    if cell is None:
        return "—"
    if not cell["inputs"] and not cell["outputs"]:
        return "not inspected"
    return f"{cell['inputs'] or '—'} → {cell['outputs'] or '—'}"


def _delta_html(name, delta):
    """A change against the first item: "+0.05", "-1.2 MB", "±0" (green when better)."""
    if delta is None:
        return ""
    if delta == 0:
        return mark_safe(' <span class="delta same">±0</span>')
    if name in ("size", "total_size"):
        text = ("+" if delta > 0 else "-") + filesizeformat(abs(delta))
        better = delta < 0
    elif name == "score":
        text = f"{delta:+.3g}"
        better = delta > 0
    else:
        text = f"{delta:+g}"
        better = None
    css = "" if better is None else (" up" if better else " down")
    return format_html(' <span class="delta{}">{}</span>', css, text)


def _kv_diff(base, value):
    """A mapping as its differences from the first item's: added, removed and changed keys."""
    base, value = base or {}, value or {}
    items = []
    for key in sorted(set(base) | set(value)):
        if key not in base:
            items.append(format_html('<li class="added">+ {}: {}</li>', key, _display("", value[key])))
        elif key not in value:
            items.append(format_html('<li class="removed">{}: {}</li>', key, _display("", base[key])))
        elif base[key] != value[key]:
            items.append(format_html('<li class="changed">{}: {}</li>', key, _display("", value[key])))
    if not items:
        return mark_safe('<span class="muted">same as the first</span>')
    return format_html('<ul class="kv-diff">{}</ul>', mark_safe("".join(items)))


def _cells(row, links):
    """A field's cells: the first item's value, then each other item's value with its change
    against the first (deltas, labels added/removed, key/value differences, linked ids)."""
    name, values = row["field"], row["values"]
    cells = []
    for i, value in enumerate(values):
        if name == "derived_from":
            link = links.get(value)
            cells.append(format_html('<a href="{}">{}</a>', link[1], link[0]) if link else _display(name, value))
        elif name in KEY_VALUE_FIELDS and i and isinstance(value, dict):
            cells.append(_kv_diff(values[0], value))
        elif name in KEY_VALUE_FIELDS and isinstance(value, dict) and value:
            cells.append(_kv_diff({}, value))
        elif name == "labels" and i:
            added, removed = row["added"][i], row["removed"][i]
            parts = [format_html('<span class="label-added">+{}</span>', x) for x in added]
            parts += [format_html('<span class="label-removed">{}</span>', x) for x in removed]
            cells.append(
                mark_safe(", ".join(str(p) for p in parts))
                if parts
                else mark_safe('<span class="muted">same labels</span>')
            )
        elif "deltas" in row and i:
            cells.append(format_html("{}{}", _display(name, value), _delta_html(name, row["deltas"][i])))
        else:
            cells.append(_display(name, value))
    return cells


def _derived_links(kind, ids):
    """``{id: (label, url)}`` for the derived-from ids of the items, in one query."""
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    if kind == "versions":
        rows = ModelVersion.objects.filter(pk__in=wanted).select_related("registered_model")
        return {str(v.pk): (str(v), v.get_absolute_url()) for v in rows}
    rows = Artifact.objects.filter(pk__in=wanted).select_related("version__registered_model")
    return {str(a.pk): (str(a), a.version.get_absolute_url() + f"#variant-{a.pk}") for a in rows}


def _add_point(comparison, precision, size, score, label, fmt=""):
    if score is None:
        comparison.unscored.append(f"{label} {precision}")
    else:
        comparison.points.append(Point(precision, size, score, label, fmt))


# One marker shape per format (the colour is the precision's), in the order formats appear.
MARKERS = ["circle", "square", "triangle", "diamond"]


def marker_shapes(points):
    """``{format: shape}`` for the formats on a chart."""
    formats = list(dict.fromkeys(p.format for p in points))
    return {fmt: MARKERS[i % len(MARKERS)] for i, fmt in enumerate(formats)}


def _marker(shape, x, y, colour, r=6):
    if shape == "square":
        return format_html(
            '<rect class="marker" x="{}" y="{}" width="{}" height="{}" fill="{}"/>',
            _n(x - r),
            _n(y - r),
            2 * r,
            2 * r,
            colour,
        )
    if shape in ("triangle", "diamond"):
        corners = (
            [(x, y - r * 1.2), (x + r * 1.1, y + r * 0.9), (x - r * 1.1, y + r * 0.9)]
            if shape == "triangle"
            else [(x, y - r * 1.3), (x + r * 1.1, y), (x, y + r * 1.3), (x - r * 1.1, y)]
        )
        return format_html(
            '<polygon class="marker" points="{}" fill="{}"/>', " ".join(f"{_n(a)},{_n(b)}" for a, b in corners), colour
        )
    return format_html('<circle class="marker" cx="{}" cy="{}" r="{}" fill="{}"/>', _n(x), _n(y), r, colour)


def _size_ticks(lo, hi):
    """Round sizes (1, 2, 5, 10, 20... of a binary unit) between lo and hi for a log axis."""
    ticks = []
    for power in range(len(SIZE_UNITS)):
        for m in (1, 2, 5, 10, 20, 50, 100, 200, 500):
            value = m * 1024**power
            if lo <= value <= hi and (not ticks or value > ticks[-1][0]):
                ticks.append((value, f"{m} {SIZE_UNITS[power]}" if power else f"{m} B"))
    while len(ticks) > 7:
        ticks = ticks[::2]
    return ticks


def _nice_step(span, count=5):
    """A round tick step (1, 2 or 5 times a power of ten) giving about ``count`` ticks."""
    raw = span / count if span > 0 else 1
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _n(value):
    """A coordinate as SVG text (format_html escapes its arguments into strings first)."""
    return f"{value:.1f}"


def score_size_chart(points, width=640, height=360):
    """An inline SVG scatter plot of score against file size, one colour per precision.

    Server-rendered so the page needs no chart library and works offline; the size axis is
    logarithmic, so equal distances are equal ratios; the marker's shape is the format.
    """
    if not points:
        return ""
    left, right, top, bottom = 64, 36, 16, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    # A log size axis: builds differ by factors (FP32 is 4x INT8), which a linear axis squeezes
    # against zero.
    sizes = [max(p.size, 1) for p in points]
    x_lo, x_hi = min(sizes) / 1.6, max(sizes) * 1.6
    scores = [p.score for p in points]
    lo, hi = min(scores), max(scores)
    if lo >= 0 and hi <= 1:
        pad = max((hi - lo) * 0.2, 0.02)
        lo, hi = max(0.0, lo - pad), min(1.0, hi + pad)
    elif lo == hi:
        lo, hi = lo - 1, hi + 1
    y_step = _nice_step(hi - lo)
    y_lo, y_hi = math.floor(lo / y_step) * y_step, math.ceil(hi / y_step) * y_step
    if y_hi == y_lo:
        y_hi = y_lo + y_step

    def x(size):
        return left + plot_w * (math.log(max(size, 1)) - math.log(x_lo)) / (math.log(x_hi) - math.log(x_lo))

    def y(score):
        return top + plot_h * (1 - (score - y_lo) / (y_hi - y_lo))

    parts = [
        format_html(
            '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-labelledby="chart-title">'
            '<title id="chart-title">Score against size, per precision</title>',
            width,
            height,
        )
    ]
    ticks = []
    for tick, label in _size_ticks(x_lo, x_hi):
        ticks.append(
            format_html(
                '<line class="grid" x1="{x}" x2="{x}" y1="{t}" y2="{b}"/>'
                '<text class="tick" x="{x}" y="{ty}" text-anchor="middle">{label}</text>',
                x=_n(x(tick)),
                t=top,
                b=top + plot_h,
                ty=top + plot_h + 16,
                label=label,
            )
        )
    for i in range(round((y_hi - y_lo) / y_step) + 1):
        value = y_lo + i * y_step
        ticks.append(
            format_html(
                '<line class="grid" x1="{l}" x2="{r}" y1="{y}" y2="{y}"/>'
                '<text class="tick" x="{tx}" y="{ty}" text-anchor="end">{label}</text>',
                l=left,
                r=left + plot_w,
                y=_n(y(value)),
                tx=left - 6,
                ty=_n(y(value) + 4),
                label=f"{value:.4g}",
            )
        )
    parts += ticks
    parts.append(
        format_html(
            '<text class="axis" x="{}" y="{}" text-anchor="middle">Size (log scale)</text>'
            '<text class="axis" transform="translate(14 {}) rotate(-90)" text-anchor="middle">Score</text>',
            _n(left + plot_w / 2),
            height - 8,
            _n(top + plot_h / 2),
        )
    )
    shapes = marker_shapes(points)
    for p in points:
        # Labels show on hover (or focus), so close points do not print over each other; those on
        # the right side go to their left, so they stay inside the chart.
        px, py = x(p.size), y(p.score)
        flip = px > left + plot_w * 0.7
        parts.append(
            format_html(
                '<g class="point" tabindex="0"><title>{}: {} {}, score {}</title>{}'
                '<text class="point-label" x="{}" y="{}" text-anchor="{}">{}</text></g>',
                p.label,
                p.precision,
                filesizeformat(p.size),
                f"{p.score:.4g}",
                _marker(shapes[p.format], px, py, PRECISION_COLOURS.get(p.precision, "#333")),
                _n(px - 10 if flip else px + 10),
                _n(py + 4),
                "end" if flip else "start",
                p.label,
            )
        )
    parts.append("</svg>")
    return mark_safe("".join(str(part) for part in parts))


def chart_legend(points):
    """The precisions present on a chart with their colours, widest first."""
    present = {p.precision for p in points}
    return [(name, colour) for name, colour in PRECISION_COLOURS.items() if name in present]
