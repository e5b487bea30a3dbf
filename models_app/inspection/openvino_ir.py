"""OpenVINO IR: the ``.xml`` graph, parsed as a stream with defusedxml.

No DTD, entity or external reference is accepted (defusedxml refuses them before anything is
expanded), elements may nest at most ``Limits.max_depth`` deep, and at most ``Limits.graph_bytes``
of XML are read. Layers are dropped from the tree once counted, so memory follows one layer, not
the graph. The ``.bin`` weights are never read: the Const layers' shapes and element types say
how many parameters there are and in which precision.
"""

import re
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from .common import InspectionError, Limits, bounded_counts, element_count, weight_precision

PORT_PRECISIONS = {
    "FP64": "f64",
    "FP32": "f32",
    "FP16": "f16",
    "BF16": "bf16",
    "I64": "i64",
    "I32": "i32",
    "I16": "i16",
    "I8": "i8",
    "U64": "u64",
    "U32": "u32",
    "U16": "u16",
    "U8": "u8",
    "I4": "i4",
    "U4": "u4",
    "BOOL": "boolean",
}
ELEMENT_BYTES = {"f64": 8, "f32": 4, "f16": 2, "bf16": 2, "i8": 1, "u8": 1, "f8e4m3": 1, "f8e5m2": 1}
QUANTIZE_TYPES = ("FakeQuantize", "FakeConvert")
RT_INFO_ENTRIES, RT_INFO_VALUE_CHARS = 100, 200


class NotAnIR(InspectionError):
    """XML whose root is not ``<net>``: some other XML file (a configuration, say)."""


class _Bounded:
    """A read-only view of a stream that refuses to hand out more than ``limit`` bytes."""

    def __init__(self, stream, limit):
        self.stream, self.limit, self.count = stream, limit, 0

    def read(self, size=-1):
        size = 64 * 1024 if size is None or size < 0 else size
        data = self.stream.read(min(size, self.limit + 1 - self.count))
        self.count += len(data)
        if self.count > self.limit:
            raise InspectionError(f"The IR's XML is larger than the inspection limit of {self.limit} bytes.")
        return data


def _dim(text):
    text = (text or "").strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    return "?" if text in ("", "-1", "?") else text


def _shape(text):
    """``"1,3,?,224"`` as ``[1, 3, "?", 224]``; ranges (``1..10``) stay text."""
    text = (text or "").strip()
    return [] if not text else [_dim(d) for d in text.split(",")]


def _port_shape(port):
    return [_dim(d.text) for d in port.findall("dim")]


def _first_name(names):
    # Names are comma separated, with commas inside a name escaped as "\,".
    parts = re.split(r"(?<!\\),", names or "")
    return parts[0].replace("\\,", ",").strip() if parts and parts[0].strip() else ""


def inspect_ir(stream, limits=None):
    """Inputs, outputs, versions, operation counts, parameters and weight precision of an IR."""
    limits = limits or Limits()
    bounded = _Bounded(stream, limits.graph_bytes)
    stack, parents = [], []
    op_counts, elements_by_type, opsets = {}, {}, set()
    quantize_ops = 0
    inputs, results, port_names = [], {}, {}
    rt_info, ir_version = {}, None
    try:
        for event, elem in SafeET.iterparse(bounded, events=("start", "end"), forbid_dtd=True):
            if event == "start":
                stack.append(elem.tag)
                parents.append(elem)
                if len(stack) > limits.max_depth:
                    raise InspectionError(f"The IR's XML nests deeper than {limits.max_depth} elements.")
                if len(stack) == 1:
                    if elem.tag != "net":
                        raise NotAnIR(f"This XML is not an OpenVINO IR (its root is <{elem.tag[:50]}>).")
                    version = elem.get("version", "")
                    ir_version = int(version) if version.isdigit() else None
                continue
            depth, parent = len(stack), stack[-2] if len(stack) > 1 else ""
            stack.pop()
            parents.pop()
            tag = elem.tag
            if tag in ("dim", "port", "data", "input", "output"):
                continue  # read with their layer
            if tag == "layer":
                kind = elem.get("type", "")
                op_counts[kind] = op_counts.get(kind, 0) + 1
                opsets.add(elem.get("version", ""))
                data = elem.find("data")
                top = depth == 3 and parent == "layers"
                if kind == "Const" and data is not None:
                    element_type = data.get("element_type", "")
                    count = element_count(_shape(data.get("shape")))
                    if count is None and data.get("size", "").isdigit() and element_type in ELEMENT_BYTES:
                        count = int(data.get("size")) // ELEMENT_BYTES[element_type]
                    elements_by_type[element_type] = elements_by_type.get(element_type, 0) + (count or 0)
                elif kind in QUANTIZE_TYPES:
                    levels = data.get("levels", "") if data is not None else ""
                    if kind == "FakeConvert" or not levels.isdigit() or int(levels) <= 256:
                        quantize_ops += 1
                if top:
                    for port in elem.iterfind("output/port"):
                        name = _first_name(port.get("names"))
                        if name:
                            port_names[(elem.get("id"), port.get("id"))] = name
                    if kind == "Parameter":
                        port = elem.find("output/port")
                        shape = (
                            _shape(data.get("shape")) if data is not None and data.get("shape") is not None else None
                        )
                        inputs.append(
                            {
                                "name": (port is not None and _first_name(port.get("names"))) or elem.get("name", ""),
                                "shape": shape
                                if shape is not None
                                else (_port_shape(port) if port is not None else []),
                                "element_type": (data.get("element_type") if data is not None else "") or "",
                            }
                        )
                    elif kind == "Result":
                        port = elem.find("input/port")
                        results[elem.get("id")] = {
                            "name": elem.get("name", ""),
                            "shape": _port_shape(port) if port is not None else [],
                            "element_type": PORT_PRECISIONS.get(
                                (port.get("precision") if port is not None else "") or "", ""
                            ),
                        }
                _drop(elem, parents)
            elif tag == "edge" and depth == 3 and parent == "edges":
                result = results.get(elem.get("to-layer"))
                name = port_names.get((elem.get("from-layer"), elem.get("from-port")))
                if result is not None and name:
                    result["name"] = name
                _drop(elem, parents)
            elif tag == "rt_info" and depth == 2:
                _flatten_rt_info(elem, "", rt_info)
                _drop(elem, parents)
    except (ParseError, DefusedXmlException) as exc:
        raise InspectionError(f"The IR's XML could not be parsed safely: {exc.__class__.__name__}: {exc}") from exc
    if ir_version is None and not op_counts:
        raise InspectionError("The IR's XML has no layers.")
    weights = {t: n for t, n in elements_by_type.items() if t in ELEMENT_BYTES or t in ("i4", "u4", "nf4")}
    return {
        "format": "openvino",
        "ir_version": ir_version,
        "opset": max((int(v[5:]) for v in opsets if re.fullmatch(r"opset\d+", v)), default=None),
        "inputs": inputs,
        "outputs": list(results.values()),
        "producer": _producer(rt_info),
        "rt_info": rt_info,
        "op_counts": bounded_counts(op_counts),
        "parameter_count": sum(weights.values()),
        "weight_elements": bounded_counts(weights),
        "quantize_ops": quantize_ops,
        "weight_precision": weight_precision(weights, quantize_ops),
    }


def _drop(elem, parents):
    """Forget a processed element, so the tree never holds more than the element being read."""
    elem.clear()
    if parents and len(parents[-1]) and parents[-1][-1] is elem:
        del parents[-1][-1]


def _flatten_rt_info(elem, prefix, out):
    """``<conversion_parameters><framework value="onnx"/>`` as ``{"conversion_parameters/framework": "onnx"}``.

    Some entries are written ``<info name=... value=...>`` (``<attribute ...>`` in old IRs); the
    name is the key then.
    """
    for child in elem:
        if len(out) >= RT_INFO_ENTRIES:
            return
        key = child.get("name") if child.tag in ("attribute", "info") and child.get("name") else child.tag
        path = f"{prefix}{key}"
        if child.get("value") is not None:
            out[path[:200]] = child.get("value")[:RT_INFO_VALUE_CHARS]
        if len(child):
            _flatten_rt_info(child, f"{path}/", out)


def _producer(rt_info):
    """The producing framework and tool versions, where the IR recorded them."""
    keys = {
        "framework": ("conversion_parameters/framework", "framework"),
        "runtime_version": ("Runtime_version",),
        "converter_version": ("MO_version", "OVC_version", "conversion_parameters/version"),
        "nncf_version": ("nncf/version", "optimization/nncf_version"),
    }
    producer = {}
    for name, candidates in keys.items():
        for key in candidates:
            if rt_info.get(key):
                producer[name] = rt_info[key]
                break
    return producer
