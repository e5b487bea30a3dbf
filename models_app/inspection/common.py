"""Shared pieces of the inspectors: errors, limits, and the weight-precision rule."""

from dataclasses import dataclass


class InspectionError(Exception):
    """The file could not be inspected (malformed, hostile or over a limit); the message says why."""


class NotApplicable(Exception):  # noqa: N818 (an outcome, not a failure)
    """The file is of a kind that is not inspected (or must not be opened); the message says which."""

    def __init__(self, message, *, kind="", details=None):
        super().__init__(message)
        self.kind, self.details = kind, details or {}


@dataclass(frozen=True)
class Limits:
    """Bounds on what one inspection may read and keep.

    ``graph_bytes`` bounds an IR's XML and the structure of an ONNX model once its weight data is
    skipped (what is parsed in memory); ``file_bytes`` bounds the bytes read from the file at all;
    ``max_depth`` the nesting of XML elements and of ONNX subgraphs; ``zip_members`` the entries of
    an archive and ``zip_ratio`` the compression ratio a member may declare; ``onnx_fields`` the
    protobuf fields an ONNX file may have (each costs a step of Python, so this bounds the time:
    a graph of 100,000 nodes has a few million).
    """

    graph_bytes: int = 64 * 1024 * 1024
    file_bytes: int = 2 * 1024 * 1024 * 1024
    max_depth: int = 64
    zip_members: int = 10_000
    zip_ratio: int = 200
    onnx_fields: int = 20_000_000
    listed_files: int = 500


# Element types as OpenVINO names them; ONNX types are mapped onto these names.
WEIGHT_TYPES = {
    "f64": "FP32",
    "f32": "FP32",
    "f16": "FP16",
    "bf16": "BF16",
    "f8e4m3": "FP8",
    "f8e5m2": "FP8",
    "i8": "INT8",
    "u8": "INT8",
    "i4": "INT4",
    "u4": "INT4",
    "nf4": "INT4",
}


def element_count(shape):
    """Elements of a static shape (a list of ints); None when a dimension is not a number."""
    count = 1
    for dim in shape:
        if not isinstance(dim, int) or dim < 0:
            return None
        count *= dim
    return count


def weight_precision(elements_by_type, quantize_ops):
    """The precision the weights are really stored in.

    ``elements_by_type`` counts weight elements per element type (``f32``, ``f16``, ``i8``...);
    ``quantize_ops`` counts quantization operations (FakeQuantize, QuantizeLinear, ...). 4-bit
    weights make INT4 and 8-bit weights or quantization operations make INT8, whatever share of
    the weights stays in floating point (scales, biases and first/last layers usually do);
    otherwise the floating-point type holding most elements decides. None without weights.
    """
    by_precision = {}
    for element_type, count in elements_by_type.items():
        precision = WEIGHT_TYPES.get(element_type)
        if precision:
            by_precision[precision] = by_precision.get(precision, 0) + count
    if by_precision.get("INT4"):
        return "INT4"
    if by_precision.get("INT8") or quantize_ops:
        return "INT8"
    floats = {p: n for p, n in by_precision.items() if p in ("FP32", "FP16", "BF16", "FP8") and n}
    if not floats:
        return None
    return max(floats, key=lambda p: floats[p])


def bounded_counts(counts, limit=500):
    """A count dict with at most ``limit`` keys (the largest), so a crafted graph cannot bloat a report."""
    if len(counts) <= limit:
        return dict(sorted(counts.items()))
    return dict(sorted(sorted(counts.items(), key=lambda kv: -kv[1])[:limit]))
