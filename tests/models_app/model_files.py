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


def openvino_ir(weights="f32", fake_quantize=False, height=224, width=224, framework="onnx"):
    """An IR v11 ``(xml, bin)``: input "image" [?,3,H,W] f32, a Convolution with 8x3x3x3 weights
    stored as ``weights`` (f32, f16 behind a Convert, or i8 behind a Convert and Multiply), an
    optional FakeQuantize on the input, and the output "scores"."""
    size = {"f32": 4, "f16": 2, "i8": 1}[weights] * 216
    out_h, out_w = height - 2, width - 2
    layers = [
        '<layer id="0" name="image" type="Parameter" version="opset1">'
        f'<data shape="?,3,{height},{width}" element_type="f32"/>'
        f"<output>{_port(0, 'FP32', [-1, 3, height, width], 'image')}</output></layer>",
        '<layer id="1" name="conv.weight" type="Const" version="opset1">'
        f'<data element_type="{weights}" shape="8,3,3,3" offset="0" size="{size}"/>'
        f"<output>{_port(0, PORT_PRECISION[weights], [8, 3, 3, 3])}</output></layer>",
    ]
    edges = []
    weight_source = ("1", "0")
    next_id = 2
    if weights != "f32":
        layers.append(
            f'<layer id="{next_id}" name="conv.weight/convert" type="Convert" version="opset1">'
            '<data destination_type="f32"/>'
            f"<input>{_port(0, PORT_PRECISION[weights], [8, 3, 3, 3])}</input>"
            f"<output>{_port(1, 'FP32', [8, 3, 3, 3])}</output></layer>"
        )
        edges.append(f'<edge from-layer="1" from-port="0" to-layer="{next_id}" to-port="0"/>')
        weight_source = (str(next_id), "1")
        next_id += 1
    image_source = ("0", "0")
    if fake_quantize:
        fq = next_id
        layers.append(
            f'<layer id="{fq}" name="image/fq" type="FakeQuantize" version="opset1">'
            '<data levels="256" auto_broadcast="numpy"/>'
            f"<input>{_port(0, 'FP32', [-1, 3, height, width])}</input>"
            f"<output>{_port(5, 'FP32', [-1, 3, height, width])}</output></layer>"
        )
        edges.append(f'<edge from-layer="0" from-port="0" to-layer="{fq}" to-port="0"/>')
        image_source = (str(fq), "5")
        next_id += 1
    conv, result = next_id, next_id + 1
    layers.append(
        f'<layer id="{conv}" name="conv" type="Convolution" version="opset1">'
        '<data strides="1,1" dilations="1,1" pads_begin="0,0" pads_end="0,0" auto_pad="explicit"/>'
        f"<input>{_port(0, 'FP32', [-1, 3, height, width])}{_port(1, 'FP32', [8, 3, 3, 3])}</input>"
        f"<output>{_port(2, 'FP32', [-1, 8, out_h, out_w], 'scores')}</output></layer>"
    )
    layers.append(
        f'<layer id="{result}" name="scores/sink_port_0" type="Result" version="opset1">'
        f"<input>{_port(0, 'FP32', [-1, 8, out_h, out_w])}</input></layer>"
    )
    edges += [
        f'<edge from-layer="{image_source[0]}" from-port="{image_source[1]}" to-layer="{conv}" to-port="0"/>',
        f'<edge from-layer="{weight_source[0]}" from-port="{weight_source[1]}" to-layer="{conv}" to-port="1"/>',
        f'<edge from-layer="{conv}" from-port="2" to-layer="{result}" to-port="0"/>',
    ]
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
