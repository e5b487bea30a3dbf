"""Side-by-side comparison of 2 to 4 versions or variants, and its score-against-size chart.

``compare(kind, ids)`` returns plain rows (a field, one display value per item, whether they
differ) and chart points, so a page can render it and another front end (the compare API) can
produce the same structure and replace this module without the template changing.
"""

import math
import uuid
from dataclasses import dataclass, field

from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from .models import Artifact, ModelVersion

MIN_ITEMS, MAX_ITEMS = 2, 4
SIZE_UNITS = ["bytes", "KB", "MB", "GB", "TB"]
# One colour per precision, the same on every chart (colour-blind-safe Okabe-Ito palette).
PRECISION_COLOURS = {
    "FP32": "#0072B2", "FP16": "#E69F00", "BF16": "#CC79A7", "FP8": "#56B4E9",
    "INT8": "#009E73", "INT4": "#D55E00", "MIXED": "#7f7f7f",
}


class ComparisonError(ValueError):
    """The selection cannot be compared (wrong number of items, bad or unknown ids)."""


@dataclass
class Item:
    label: str
    url: str
    obj: object


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


def _fetch(queryset, ids):
    found = {obj.pk: obj for obj in queryset.filter(pk__in=ids)}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise ComparisonError(f"Not found: {', '.join(missing)}.")
    return [found[i] for i in ids]


def _rows(items, spec):
    rows = []
    for label, get in spec:
        values = [get(item.obj) for item in items]
        values = ["—" if v in (None, "", [], {}) else str(v) for v in values]
        rows.append(Row(label, values, len(set(values)) > 1))
    return rows


def _score(value):
    return "—" if value is None else f"{value:.4g}"


def _labels(version):
    return ", ".join(x if isinstance(x, str) else str(x.get("name", x)) for x in version.labels)


def compare(kind, ids):
    """Compare versions (``kind="versions"``) or variants (``kind="artifacts"``) by id, in the
    order given. Raises ComparisonError for a selection that cannot be compared."""
    if kind == "versions":
        return _compare_versions(parse_ids(ids))
    if kind == "artifacts":
        return _compare_artifacts(parse_ids(ids))
    raise ComparisonError("Choose versions or variants to compare.")


def _compare_versions(ids):
    versions = _fetch(
        ModelVersion.objects.with_totals().select_related("registered_model", "created_by", "derived_from")
        .prefetch_related("artifacts"),
        ids,
    )
    items = [Item(str(v), v.get_absolute_url(), v) for v in versions]
    spec = [
        ("Model", lambda v: v.registered_model.name),
        ("Version", lambda v: v.version),
        ("Status", lambda v: v.status),
        ("Category", lambda v: v.category),
        ("Architecture", lambda v: v.architecture),
        ("Origin", lambda v: v.origin),
        ("Geti project", lambda v: v.project_name or v.project_id),
        ("Labels", _labels),
        ("Variants", lambda v: v.artifact_count),
        ("Precisions", lambda v: ", ".join(sorted({a.precision for a in v.artifacts.all()},
                                                  key=Artifact.precision_order))),
        ("Target devices", lambda v: ", ".join(sorted({a.target_device for a in v.artifacts.all()}))),
        ("Total size", lambda v: filesizeformat(v.total_size) if v.total_size is not None else None),
        ("Best score", lambda v: _score(v.best_score) if v.best_score is not None else None),
        ("Derived from", lambda v: v.derived_from),
        ("Created", lambda v: v.created_at.strftime("%Y-%m-%d %H:%M")),
        ("Created by", lambda v: v.created_by),
    ]
    comparison = Comparison("versions", items, _rows(items, spec))
    one_model = len({v.registered_model_id for v in versions}) == 1
    for version in versions:
        name = version.version if one_model else str(version)
        for artifact in version.artifacts.all():
            _add_point(comparison, artifact, f"{name} {artifact.target_device}")
    return comparison


def _compare_artifacts(ids):
    artifacts = _fetch(Artifact.objects.with_version(), ids)
    items = [Item(f"{a.version} {a.precision}/{a.target_device}", a.version.get_absolute_url(), a)
             for a in artifacts]
    spec = [
        ("Model", lambda a: a.version.registered_model.name),
        ("Version", lambda a: a.version.version),
        ("Precision", lambda a: a.precision),
        ("Target device", lambda a: a.target_device),
        ("Device type", lambda a: a.target_device_type),
        ("Format", lambda a: a.format),
        ("Score", lambda a: _score(a.score) if a.score is not None else None),
        ("Size", lambda a: filesizeformat(a.size)),
        ("sha256", lambda a: a.sha256),
        ("File name", lambda a: a.original_filename),
        ("Category", lambda a: a.version.category),
        ("Architecture", lambda a: a.version.architecture),
        ("Created", lambda a: a.created_at.strftime("%Y-%m-%d %H:%M")),
    ]
    comparison = Comparison("artifacts", items, _rows(items, spec))
    one_model = len({a.version.registered_model_id for a in artifacts}) == 1
    for artifact in artifacts:
        name = artifact.version.version if one_model else str(artifact.version)
        _add_point(comparison, artifact, f"{name} {artifact.target_device}")
    return comparison


def _add_point(comparison, artifact, label):
    if artifact.score is None:
        comparison.unscored.append(f"{artifact.version} {artifact.precision}/{artifact.target_device}")
    else:
        comparison.points.append(Point(artifact.precision, artifact.size, artifact.score, label))


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
    unit = 1024 ** power
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

    parts = [format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-labelledby="chart-title">'
        '<title id="chart-title">Score against size, per precision</title>', width, height)]
    ticks = []
    for i in range(round(x_max / x_step) + 1):
        tick = i * x_step
        ticks.append(format_html(
            '<line class="grid" x1="{x}" x2="{x}" y1="{t}" y2="{b}"/>'
            '<text class="tick" x="{x}" y="{ty}" text-anchor="middle">{label}</text>',
            x=_n(x(tick)), t=top, b=top + plot_h, ty=top + plot_h + 16,
            label=f"{tick / unit:g} {SIZE_UNITS[power]}" if tick else "0"))
    for i in range(round((y_hi - y_lo) / y_step) + 1):
        value = y_lo + i * y_step
        ticks.append(format_html(
            '<line class="grid" x1="{l}" x2="{r}" y1="{y}" y2="{y}"/>'
            '<text class="tick" x="{tx}" y="{ty}" text-anchor="end">{label}</text>',
            l=left, r=left + plot_w, y=_n(y(value)), tx=left - 6, ty=_n(y(value) + 4), label=f"{value:.4g}"))
    parts += ticks
    parts.append(format_html(
        '<text class="axis" x="{}" y="{}" text-anchor="middle">Size</text>'
        '<text class="axis" transform="translate(14 {}) rotate(-90)" text-anchor="middle">Score</text>',
        _n(left + plot_w / 2), height - 8, _n(top + plot_h / 2)))
    for p in points:
        # Labels of points on the right side go to their left, so they stay inside the chart.
        px, py = x(p.size), y(p.score)
        flip = px > left + plot_w * 0.7
        parts.append(format_html(
            '<g class="point"><circle cx="{}" cy="{}" r="6" fill="{}"><title>{}: {} {}, score {}</title>'
            '</circle><text class="point-label" x="{}" y="{}" text-anchor="{}">{}</text></g>',
            _n(px), _n(py), PRECISION_COLOURS.get(p.precision, "#333"), p.label, p.precision,
            filesizeformat(p.size), f"{p.score:.4g}", _n(px - 9 if flip else px + 9), _n(py + 4),
            "end" if flip else "start", p.label))
    parts.append("</svg>")
    return mark_safe("".join(str(part) for part in parts))


def chart_legend(points):
    """The precisions present on a chart with their colours, widest first."""
    present = {p.precision for p in points}
    return [(name, colour) for name, colour in PRECISION_COLOURS.items() if name in present]
