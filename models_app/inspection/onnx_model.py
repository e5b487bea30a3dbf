"""ONNX: the protobuf read as a stream, weight data skipped, the rest parsed with ``onnx``.

An ONNX file is mostly weights (``raw_data`` and the typed ``*_data`` fields of its tensors). The
walker below copies the model's protobuf field by field and skips those fields' bytes without
keeping them, so what is parsed in memory is the graph's structure (names, shapes, types,
operators), bounded by ``Limits.graph_bytes``, whatever the file's size. Tensors whose data lives
in external files are recognised by their ``data_location``; those files are never opened.
Nothing is executed: the ``onnx`` package only parses the reduced message.
"""

import onnx

from .common import InspectionError, Limits, bounded_counts, element_count, weight_precision

# protobuf wire types
VARINT, I64, LEN, I32 = 0, 1, 2, 5

# TensorProto fields that hold the data (float_data, int32_data, string_data, int64_data,
# raw_data, double_data, uint64_data): skipped, never kept.
TENSOR_DATA_FIELDS = frozenset({4, 5, 6, 7, 9, 10, 11})
ONNX_TYPES = {
    onnx.TensorProto.DOUBLE: "f64",
    onnx.TensorProto.FLOAT: "f32",
    onnx.TensorProto.FLOAT16: "f16",
    onnx.TensorProto.BFLOAT16: "bf16",
    onnx.TensorProto.FLOAT8E4M3FN: "f8e4m3",
    onnx.TensorProto.FLOAT8E4M3FNUZ: "f8e4m3",
    onnx.TensorProto.FLOAT8E5M2: "f8e5m2",
    onnx.TensorProto.FLOAT8E5M2FNUZ: "f8e5m2",
    onnx.TensorProto.INT8: "i8",
    onnx.TensorProto.UINT8: "u8",
    onnx.TensorProto.INT4: "i4",
    onnx.TensorProto.UINT4: "u4",
    onnx.TensorProto.INT16: "i16",
    onnx.TensorProto.UINT16: "u16",
    onnx.TensorProto.INT32: "i32",
    onnx.TensorProto.UINT32: "u32",
    onnx.TensorProto.INT64: "i64",
    onnx.TensorProto.UINT64: "u64",
    onnx.TensorProto.BOOL: "boolean",
    onnx.TensorProto.STRING: "string",
}
WEIGHT_ELEMENT_TYPES = frozenset({"f64", "f32", "f16", "bf16", "f8e4m3", "f8e5m2", "i8", "u8", "i4", "u4"})
# Operators that only appear in quantized graphs (QDQ pairs, QOperator and integer kernels).
QUANTIZE_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
        "QLinearAdd",
        "QLinearMul",
        "MatMulInteger",
        "ConvInteger",
        "MatMulNBits",
        "DynamicQuantizeMatMul",
    }
)


class _Stream:
    """Sequential reads from a file object, counting bytes, refusing more than ``limit``."""

    def __init__(self, fileobj, size, limits):
        if size > limits.file_bytes:
            raise InspectionError(f"The ONNX file is larger than the inspection limit of {limits.file_bytes} bytes.")
        self.fileobj, self.size, self.pos = fileobj, size, 0
        self.kept, self.fields, self.limits = 0, 0, limits

    def read(self, n):
        data = self.fileobj.read(n) if n else b""
        if len(data) != n:
            raise InspectionError("The ONNX file is truncated: its protobuf ends in the middle of a field.")
        self.pos += n
        return data

    def skip(self, n):
        while n:
            chunk = self.fileobj.read(min(n, 1024 * 1024))
            if not chunk:
                raise InspectionError("The ONNX file is truncated: its protobuf ends in the middle of a field.")
            n -= len(chunk)
            self.pos += len(chunk)

    def field(self):
        """The next field's key; counts fields, so a file of millions of tiny fields ends early."""
        self.fields += 1
        if self.fields > self.limits.onnx_fields:
            raise InspectionError(f"The ONNX file has more than {self.limits.onnx_fields} protobuf fields.")
        return self.varint()

    def keep(self, n):
        self.kept += n
        if self.kept > self.limits.graph_bytes:
            raise InspectionError(
                f"The ONNX graph, without its weights, is larger than the inspection limit of "
                f"{self.limits.graph_bytes} bytes."
            )
        return self.read(n)

    def varint(self):
        value, shift = 0, 0
        while True:
            byte = self.read(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise InspectionError("The ONNX file is not a valid protobuf (a varint is too long).")


def _varint_bytes(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# Which length-delimited fields of each message are messages to walk into (field -> message),
# and which are data to skip. Everything else is copied as it is.
TENSOR, SPARSE, GRAPH, NODE, ATTRIBUTE, MODEL = "tensor", "sparse", "graph", "node", "attribute", "model"
SCHEMA = {
    MODEL: {7: GRAPH},
    GRAPH: {1: NODE, 5: TENSOR, 15: SPARSE},
    NODE: {5: ATTRIBUTE},
    ATTRIBUTE: {5: TENSOR, 6: GRAPH, 10: TENSOR, 11: GRAPH, 22: SPARSE, 23: SPARSE},
    SPARSE: {1: TENSOR, 2: TENSOR},
    TENSOR: {},
}
# training_info (ModelProto 20) holds whole training graphs with their own weights: not needed.
SKIPPED = {MODEL: frozenset({20}), TENSOR: TENSOR_DATA_FIELDS}


def _walk(stream, end, message, depth):
    """The message ``message`` from ``stream.pos`` to ``end``, with data fields left out."""
    if depth > stream.limits.max_depth:
        raise InspectionError(f"The ONNX graph nests subgraphs deeper than {stream.limits.max_depth} levels.")
    out, children, skipped = bytearray(), SCHEMA[message], SKIPPED.get(message, ())
    while stream.pos < end:
        key = stream.field()
        field, wire = key >> 3, key & 7
        if field == 0:
            raise InspectionError("The ONNX file is not a valid protobuf (field number 0).")
        if wire == VARINT:
            value = stream.varint()
            if field not in skipped:
                out += _varint_bytes(key) + _varint_bytes(value)
        elif wire in (I64, I32):
            # Unpacked repeated numbers (tensor data a writer did not pack) are skipped too.
            if field in skipped:
                stream.skip(8 if wire == I64 else 4)
            else:
                out += _varint_bytes(key) + stream.keep(8 if wire == I64 else 4)
        elif wire == LEN:
            length = stream.varint()
            if stream.pos + length > end:
                raise InspectionError("The ONNX file is truncated or corrupt: a field runs past its message.")
            if field in skipped:
                stream.skip(length)
                continue
            if field in children:
                body = _walk(stream, stream.pos + length, children[field], depth + 1)
            else:
                body = stream.keep(length)
            out += _varint_bytes(key) + _varint_bytes(len(body)) + body
        else:
            raise InspectionError(f"The ONNX file is not a valid protobuf (wire type {wire}).")
    if stream.pos != end:
        raise InspectionError("The ONNX file is truncated or corrupt: a field runs past its message.")
    return bytes(out)


def _dims(type_proto):
    tensor = type_proto.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.shape.dim]


def _value_info(value):
    elem_type = value.type.tensor_type.elem_type if value.type.HasField("tensor_type") else 0
    return {
        "name": value.name,
        "shape": _dims(value.type) if value.type.HasField("tensor_type") else None,
        "element_type": ONNX_TYPES.get(elem_type, str(elem_type) if elem_type else ""),
    }


def _graphs(graph):
    """The graph and every subgraph of its If/Loop/Scan nodes."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from _graphs(attribute.g)
            for sub in attribute.graphs:
                yield from _graphs(sub)


def inspect_onnx(fileobj, size, limits=None):
    """Inputs, outputs, opsets, producer, operation counts, parameters and weight precision."""
    limits = limits or Limits()
    stream = _Stream(fileobj, size, limits)
    reduced = _walk(stream, size, MODEL, 0)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(reduced)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise InspectionError(f"The ONNX file is not a valid ONNX model: {exc}") from exc
    if not model.HasField("graph"):
        raise InspectionError("The file has no ONNX graph.")
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    op_counts, elements_by_type, external = {}, {}, set()
    for sub in _graphs(graph):
        for node in sub.node:
            op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
            op_counts[op] = op_counts.get(op, 0) + 1
        tensors = list(sub.initializer) + [s.values for s in sub.sparse_initializer]
        for tensor in tensors:
            element_type = ONNX_TYPES.get(tensor.data_type, "")
            if element_type in WEIGHT_ELEMENT_TYPES:
                count = element_count(list(tensor.dims)) or 0
                elements_by_type[element_type] = elements_by_type.get(element_type, 0) + count
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                location = next((e.value for e in tensor.external_data if e.key == "location"), "")
                if location:
                    external.add(location)
    quantize_ops = sum(n for op, n in op_counts.items() if op.rsplit(".", 1)[-1] in QUANTIZE_OPS)
    opsets = {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
    return {
        "format": "onnx",
        "ir_version": model.ir_version or None,
        "opset": opsets.get("ai.onnx"),
        "opset_imports": opsets,
        "inputs": [_value_info(v) for v in graph.input if v.name not in initializers],
        "outputs": [_value_info(v) for v in graph.output],
        "producer": {
            key: value for key, value in (("name", model.producer_name), ("version", model.producer_version)) if value
        },
        "op_counts": bounded_counts(op_counts),
        "parameter_count": sum(elements_by_type.values()),
        "weight_elements": bounded_counts(elements_by_type),
        "quantize_ops": quantize_ops,
        "weight_precision": weight_precision(elements_by_type, quantize_ops),
        "external_data": sorted(external)[:100],
    }
