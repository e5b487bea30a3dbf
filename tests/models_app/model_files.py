"""Small real model files built by the tests: ONNX graphs made with onnx.helper, OpenVINO IRs
written as IR v11 XML (with their .bin of weights), and zips of them as Geti exports them."""

import io
import zipfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper

ONNX_ELEMENT = {np.float32: TensorProto.FLOAT, np.float16: TensorProto.FLOAT16}


def onnx_model(dtype=np.float32, quantized=False, batch="N", opset=17):
    """A convolution over a [batch, 3, 224, 224] image: 8 filters of 3x3x3 (216 weights) and a bias
    of 8. ``quantized`` stores the filters as int8 behind a DequantizeLinear (QDQ format)."""
    element = ONNX_ELEMENT[dtype]
    bias = numpy_helper.from_array(np.zeros(8, dtype=dtype), "b")
    if quantized:
        initializers = [
            numpy_helper.from_array(np.ones((8, 3, 3, 3), dtype=np.int8), "w_q"),
            numpy_helper.from_array(np.array(0.05, dtype=np.float32), "w_scale"),
            numpy_helper.from_array(np.array(0, dtype=np.int8), "w_zero"),
            bias,
        ]
        nodes = [
            helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"]),
            helper.make_node("Conv", ["image", "w", "b"], ["features"]),
        ]
    else:
        initializers = [numpy_helper.from_array(np.ones((8, 3, 3, 3), dtype=dtype), "w"), bias]
        nodes = [helper.make_node("Conv", ["image", "w", "b"], ["features"])]
    nodes.append(helper.make_node("Relu", ["features"], ["scores"]))
    graph = helper.make_graph(
        nodes,
        "detector",
        [helper.make_tensor_value_info("image", element, [batch, 3, 224, 224])],
        [helper.make_tensor_value_info("scores", element, [batch, 8, 222, 222])],
        initializers,
    )
    model = helper.make_model(
        graph, producer_name="pytorch", producer_version="2.4.0", opset_imports=[helper.make_opsetid("", opset)]
    )
    return model.SerializeToString()


PORT_PRECISION = {"f32": "FP32", "f16": "FP16", "i8": "I8", "u8": "U8", "i64": "I64"}


def _port(port_id, precision, dims, names=None):
    named = f' names="{names}"' if names else ""
    return (
        f'<port id="{port_id}" precision="{precision}"{named}>' + "".join(f"<dim>{d}</dim>" for d in dims) + "</port>"
    )


def _layer(layer_id, name, kind, data="", inputs=(), outputs=()):
    """One IR layer; ``inputs``/``outputs`` are port elements (see ``_port``)."""
    ports = (f"<input>{''.join(inputs)}</input>" if inputs else "") + (
        f"<output>{''.join(outputs)}</output>" if outputs else ""
    )
    return f'<layer id="{layer_id}" name="{name}" type="{kind}" version="opset1">{data}{ports}</layer>'


def _edge(source, target):
    return f'<edge from-layer="{source[0]}" from-port="{source[1]}" to-layer="{target[0]}" to-port="{target[1]}"/>'


def openvino_ir(weights="f32", fake_quantize=False, height=224, width=224, framework="onnx"):
    """An IR v11 ``(xml, bin)``: input "image" [?,3,H,W] f32, a Convolution with 8x3x3x3 weights
    stored as ``weights`` (f32, or f16 or i8 behind a Convert), an optional FakeQuantize on the
    input, and the output "scores"."""
    size = {"f32": 4, "f16": 2, "i8": 1}[weights] * 216
    image, kernel = [-1, 3, height, width], [8, 3, 3, 3]
    scores = [-1, 8, height - 2, width - 2]
    layers = [
        _layer(
            0,
            "image",
            "Parameter",
            f'<data shape="?,3,{height},{width}" element_type="f32"/>',
            outputs=[_port(0, "FP32", image, "image")],
        ),
        _layer(
            1,
            "conv.weight",
            "Const",
            f'<data element_type="{weights}" shape="8,3,3,3" offset="0" size="{size}"/>',
            outputs=[_port(0, PORT_PRECISION[weights], kernel)],
        ),
    ]
    edges, weight_source, image_source, next_id = [], (1, 0), (0, 0), 2
    if weights != "f32":
        layers.append(
            _layer(
                next_id,
                "conv.weight/convert",
                "Convert",
                '<data destination_type="f32"/>',
                [_port(0, PORT_PRECISION[weights], kernel)],
                [_port(1, "FP32", kernel)],
            )
        )
        edges.append(_edge((1, 0), (next_id, 0)))
        weight_source, next_id = (next_id, 1), next_id + 1
    if fake_quantize:
        layers.append(
            _layer(
                next_id,
                "image/fq",
                "FakeQuantize",
                '<data levels="256" auto_broadcast="numpy"/>',
                [_port(0, "FP32", image)],
                [_port(5, "FP32", image)],
            )
        )
        edges.append(_edge((0, 0), (next_id, 0)))
        image_source, next_id = (next_id, 5), next_id + 1
    conv, result = next_id, next_id + 1
    layers += [
        _layer(
            conv,
            "conv",
            "Convolution",
            '<data strides="1,1" dilations="1,1" pads_begin="0,0" pads_end="0,0" auto_pad="explicit"/>',
            [_port(0, "FP32", image), _port(1, "FP32", kernel)],
            [_port(2, "FP32", scores, "scores")],
        ),
        _layer(result, "scores/sink_port_0", "Result", inputs=[_port(0, "FP32", scores)]),
    ]
    edges += [_edge(image_source, (conv, 0)), _edge(weight_source, (conv, 1)), _edge((conv, 2), (result, 0))]
    xml = (
        '<?xml version="1.0"?>\n<net name="detector" version="11">'
        f"<layers>{''.join(layers)}</layers><edges>{''.join(edges)}</edges>"
        '<rt_info><Runtime_version value="2024.4.0-16579"/>'
        f'<conversion_parameters><framework value="{framework}"/>'
        '<is_python_object value="False"/></conversion_parameters>'
        "</rt_info></net>"
    )
    return xml.encode(), b"\0" * size


def zip_of(members, compression=zipfile.ZIP_DEFLATED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def geti_export(**ir_options):
    """A zip as Geti exports an optimized OpenVINO model."""
    xml, weights = openvino_ir(**ir_options)
    return zip_of({"model.xml": xml, "model.bin": weights, "config.json": b'{"task": "detection"}'})
