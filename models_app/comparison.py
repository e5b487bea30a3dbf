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
}


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


@dataclass
class Comparison:
    kind: str
    items: list
    rows: list
    variants: list = field(default_factory=list)
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
    rows = [
        Row(
            FIELD_LABELS.get(row["field"], row["field"]),
            [_display(row["field"], v) for v in row["values"]],
            row["differs"],
        )
        for row in result["fields"]
    ]
    comparison = Comparison(kind, items, rows)
    # Points are labelled by version (and model, when the items span several) and device.
    one_model = len(set(names)) == 1
    tags = [version if one_model else f"{name}:{version}" for name, version in zip(names, versions)]
    if kind == "versions":
        for row in result["variants"]:
            precision, device, _ = row["variant"].split("/", 2)
            cells = ["—" if c is None else f"{_score(c['score'])} · {filesizeformat(c['size'])}" for c in row["values"]]
            comparison.variants.append(Row(row["variant"], cells, row["differs"]))
            for tag, cell in zip(tags, row["values"]):
                if cell is not None:
                    _add_point(comparison, precision, cell["size"], cell["score"], f"{tag} {device}")
    else:
        for i, tag in enumerate(tags):
            _add_point(
                comparison,
                fields["precision"]["values"][i],
                fields["size"]["values"][i],
                fields["score"]["values"][i],
                f"{tag} {fields['target_device']['values'][i]}",
            )
    return comparison


def _add_point(comparison, precision, size, score, label):
    if score is None:
        comparison.unscored.append(f"{label} {precision}")
    else:
        comparison.points.append(Point(precision, size, score, label))


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

    Server-rendered so the page needs no chart library and works offline; sizes start at zero
    so the horizontal distances are honest ratios.
    """
    if not points:
        return ""
    left, right, top, bottom = 64, 36, 16, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    max_size = max(p.size for p in points) or 1
    # Size ticks at round numbers of the largest binary unit that fits (20 KB, not 19.5 KB).
    power = min(int(math.log(max_size, 1024)), len(SIZE_UNITS) - 1)
    unit = 1024**power
    x_step = _nice_step(max_size / unit) * unit
    x_max = math.ceil(max_size / x_step) * x_step
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
        return left + plot_w * size / x_max

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
    for i in range(round(x_max / x_step) + 1):
        tick = i * x_step
        ticks.append(
            format_html(
                '<line class="grid" x1="{x}" x2="{x}" y1="{t}" y2="{b}"/>'
                '<text class="tick" x="{x}" y="{ty}" text-anchor="middle">{label}</text>',
                x=_n(x(tick)),
                t=top,
                b=top + plot_h,
                ty=top + plot_h + 16,
                label=f"{tick / unit:g} {SIZE_UNITS[power]}" if tick else "0",
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
            '<text class="axis" x="{}" y="{}" text-anchor="middle">Size</text>'
            '<text class="axis" transform="translate(14 {}) rotate(-90)" text-anchor="middle">Score</text>',
            _n(left + plot_w / 2),
            height - 8,
            _n(top + plot_h / 2),
        )
    )
    for p in points:
        # Labels of points on the right side go to their left, so they stay inside the chart.
        px, py = x(p.size), y(p.score)
        flip = px > left + plot_w * 0.7
        parts.append(
            format_html(
                '<g class="point"><circle cx="{}" cy="{}" r="6" fill="{}"><title>{}: {} {}, score {}</title>'
                '</circle><text class="point-label" x="{}" y="{}" text-anchor="{}">{}</text></g>',
                _n(px),
                _n(py),
                PRECISION_COLOURS.get(p.precision, "#333"),
                p.label,
                p.precision,
                filesizeformat(p.size),
                f"{p.score:.4g}",
                _n(px - 9 if flip else px + 9),
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
