"""OpenVINO IR: the ``.xml`` graph, parsed as a stream with defusedxml.

No DTD, entity or external reference is accepted (defusedxml refuses them before anything is
expanded), elements may nest at most ``Limits.max_depth`` deep, and at most ``Limits.graph_bytes``
of XML are read. Every element is forgotten once read, so memory follows what is reported, not
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
WEIGHT_ELEMENT_TYPES = frozenset({*ELEMENT_BYTES, "i4", "u4", "nf4"})
RT_INFO_ENTRIES, RT_INFO_VALUE_CHARS = 100, 200
# Bounds on what is kept of a graph, however many layers it has: its inputs and outputs listed,
# and the tensor names remembered to name the outputs when the edges are read.
MAX_TENSORS, MAX_PORT_NAMES = 1000, 100_000


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


def _first_name(names):
    # Names are comma separated, with commas inside a name escaped as "\,".
    parts = re.split(r"(?<!\\),", names or "")
    return parts[0].replace("\\,", ",").strip() if parts and parts[0].strip() else ""


class _Layer:
    """What one open ``<layer>`` has shown so far: attributes, its ``<data>``, its ports."""

    __slots__ = ("attrs", "data", "ports")

    def __init__(self, attrs):
        self.attrs, self.data, self.ports = attrs, None, {"input": [], "output": []}


def inspect_ir(stream, limits=None):
    """Inputs, outputs, versions, operation counts, parameters and weight precision of an IR.

    The XML is read as a stream of events and every element is forgotten when it ends: what a
    layer says is gathered into a small record as its children go by, so memory follows the
    signature and the counts, never the size of the graph.
    """
    limits = limits or Limits()
    state = _IRState(limits)
    bounded = _Bounded(stream, limits.graph_bytes)
    try:
        for event, elem in SafeET.iterparse(bounded, events=("start", "end"), forbid_dtd=True):
            if event == "start":
                state.start(elem)
            else:
                state.end(elem)
    except (ParseError, DefusedXmlException) as exc:
        raise InspectionError(f"The IR's XML could not be parsed safely: {exc.__class__.__name__}: {exc}") from exc
    return state.report()


class _IRState:
    def __init__(self, limits):
        self.limits = limits
        self.tags, self.elements, self.layers, self.port = [], [], [], None
        self.op_counts, self.elements_by_type, self.opsets = {}, {}, set()
        self.quantize_ops, self.ir_version = 0, None
        self.inputs, self.results, self.port_names = [], {}, {}
        self.rt_info, self.rt_keys = {}, []
        self.input_count = self.output_count = 0

    def start(self, elem):
        tags, tag = self.tags, elem.tag
        parent = tags[-1] if tags else ""
        tags.append(tag)
        self.elements.append(elem)
        depth = len(tags)
        if depth > self.limits.max_depth:
            raise InspectionError(f"The IR's XML nests deeper than {self.limits.max_depth} elements.")
        if depth == 1:
            if tag != "net":
                raise NotAnIR(f"This XML is not an OpenVINO IR (its root is <{tag[:50]}>).")
            version = elem.get("version", "")
            self.ir_version = int(version) if version.isdigit() else None
        elif self.rt_keys or (depth == 2 and tag == "rt_info"):
            self._rt_info_entry(elem, depth)
        elif tag == "layer":
            self.layers.append(_Layer(dict(elem.attrib)))
        elif self.layers and tag == "data" and parent == "layer":
            self.layers[-1].data = dict(elem.attrib)
        elif self.layers and tag == "port" and parent in ("input", "output") and tags[-3] == "layer":
            self.port = {"id": elem.get("id"), "precision": elem.get("precision", ""), "names": elem.get("names")}
            self.port["dims"] = []
            ports = self.layers[-1].ports[parent]
            if len(ports) < 1000:
                ports.append(self.port)
        elif tag == "edge" and depth == 3 and parent == "edges":
            result = self.results.get(elem.get("to-layer"))
            name = self.port_names.get((elem.get("from-layer"), elem.get("from-port")))
            if result is not None and name and not result["named"]:
                result["name"] = name

    def end(self, elem):
        tags, tag = self.tags, elem.tag
        depth = len(tags)
        if self.rt_keys:
            self.rt_keys.pop()
        elif tag == "dim" and self.port is not None and len(self.port["dims"]) < 64:
            self.port["dims"].append(_dim(elem.text))
        elif tag == "port":
            self.port = None
        elif tag == "layer" and self.layers:
            self._layer(self.layers.pop(), top=depth == 3 and tags[-2] == "layers")
        tags.pop()
        self.elements.pop()
        # Forget the element: it has been read, and its parent need not keep it. The parser runs
        # a chunk ahead of these events, so later siblings may follow it already: it is the
        # parent's first child left (earlier ones are gone), not necessarily its last.
        elem.clear()
        if self.elements and len(self.elements[-1]) and self.elements[-1][0] is elem:
            del self.elements[-1][0]

    def _rt_info_entry(self, elem, depth):
        """``<conversion_parameters><framework value="onnx"/>`` as ``conversion_parameters/framework``.

        Some entries are written ``<info name=... value=...>`` (``<attribute ...>`` in old IRs);
        the name is the key then.
        """
        if depth == 2:
            self.rt_keys.append("")
            return
        key = elem.get("name") if elem.tag in ("attribute", "info") and elem.get("name") else elem.tag
        path = f"{self.rt_keys[-1]}{key}"
        self.rt_keys.append(f"{path}/")
        if elem.get("value") is not None and len(self.rt_info) < RT_INFO_ENTRIES:
            self.rt_info[path[:200]] = elem.get("value")[:RT_INFO_VALUE_CHARS]

    def _layer(self, layer, top):
        attrs, data = layer.attrs, layer.data or {}
        kind = attrs.get("type", "")
        if kind in self.op_counts or len(self.op_counts) < 1000:
            self.op_counts[kind] = self.op_counts.get(kind, 0) + 1
        if len(self.opsets) < 100:
            self.opsets.add(attrs.get("version", ""))
        if kind == "Const":
            element_type = data.get("element_type", "")
            count = element_count(_shape(data.get("shape")))
            if count is None and data.get("size", "").isdigit() and element_type in ELEMENT_BYTES:
                count = int(data["size"]) // ELEMENT_BYTES[element_type]
            if element_type in self.elements_by_type or len(self.elements_by_type) < 100:
                self.elements_by_type[element_type] = self.elements_by_type.get(element_type, 0) + (count or 0)
        elif kind in QUANTIZE_TYPES:
            levels = data.get("levels", "")
            if kind == "FakeConvert" or not levels.isdigit() or int(levels) <= 256:
                self.quantize_ops += 1
        if not top:
            return  # a layer of a subgraph (TensorIterator, Loop, If): counted, not a graph input or output
        for port in layer.ports["output"]:
            name = _first_name(port["names"])
            if name and len(self.port_names) < MAX_PORT_NAMES:
                self.port_names[(attrs.get("id"), port["id"])] = name
        if kind == "Parameter":
            self.input_count += 1
            if len(self.inputs) < MAX_TENSORS:
                port = layer.ports["output"][0] if layer.ports["output"] else None
                shape = data.get("shape")
                self.inputs.append(
                    {
                        "name": (port and _first_name(port["names"])) or attrs.get("name", ""),
                        "shape": _shape(shape) if shape is not None else (port["dims"] if port else []),
                        "element_type": data.get("element_type", ""),
                    }
                )
        elif kind == "Result":
            self.output_count += 1
            if len(self.results) < MAX_TENSORS:
                port = layer.ports["input"][0] if layer.ports["input"] else None
                named = _first_name(attrs.get("output_names"))
                self.results[attrs.get("id")] = {
                    "name": named or attrs.get("name", ""),
                    "shape": port["dims"] if port else [],
                    "element_type": PORT_PRECISIONS.get(port["precision"] if port else "", ""),
                    "named": bool(named),
                }

    def report(self):
        if self.ir_version is None and not self.op_counts:
            raise InspectionError("The IR's XML has no layers.")
        weights = {t: n for t, n in self.elements_by_type.items() if t in WEIGHT_ELEMENT_TYPES}
        opsets = [int(v[5:]) for v in self.opsets if re.fullmatch(r"opset\d+", v)]
        return {
            "format": "openvino",
            "ir_version": self.ir_version,
            "opset": max(opsets, default=None),
            "inputs": self.inputs,
            "outputs": [{k: v for k, v in r.items() if k != "named"} for r in self.results.values()],
            "input_count": self.input_count,
            "output_count": self.output_count,
            "producer": _producer(self.rt_info),
            "rt_info": self.rt_info,
            "op_counts": bounded_counts(self.op_counts),
            "parameter_count": sum(weights.values()),
            "weight_elements": bounded_counts(weights),
            "quantize_ops": self.quantize_ops,
            "weight_precision": weight_precision(weights, self.quantize_ops),
        }


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
