"""The inspection library on real small model files: what it reads from OpenVINO IRs, ONNX models
and zips of them, and how malformed, hostile and pickle-based files end."""

import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from models_app.inspection import InspectionError, Limits, NotApplicable, inspect_file

from .model_files import geti_export, onnx_model, openvino_ir, zip_of

DATA = Path(__file__).parent / "data"


def inspect(data, name="model.bin", limits=None):
    return inspect_file(io.BytesIO(data), name, len(data), limits)


# tracemalloc counts every thread of a process; the suite's own servers (moto, live servers) run
# threads, so the peak is measured in a process of its own that does nothing else.
PEAK = """
import io, json, sys, tracemalloc
import django
django.setup()
from models_app.inspection import inspect_file
data = open(sys.argv[1], "rb").read()
tracemalloc.start()
report = inspect_file(io.BytesIO(data), sys.argv[2], len(data))
print(json.dumps({"report": report, "peak": tracemalloc.get_traced_memory()[1]}, default=str))
"""


def inspect_with_peak(data, name, tmp_path):
    """The report and the peak of Python allocations while it was made."""
    path = tmp_path / name
    path.write_bytes(data)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "registry_project.settings"}
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", PEAK, str(path), name], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["report"], result["peak"]


# --- ONNX -------------------------------------------------------------------------------------


def test_an_onnx_model_gives_its_signature_opset_producer_and_parameters():
    report = inspect(onnx_model(), "detector.onnx")

    assert report["format"] == "onnx"
    assert report["inputs"] == [{"name": "image", "shape": ["N", 3, 224, 224], "element_type": "f32"}]
    assert report["outputs"] == [{"name": "scores", "shape": ["N", 8, 222, 222], "element_type": "f32"}]
    assert report["opset"] == 17
    assert report["opset_imports"] == {"ai.onnx": 17}
    assert report["ir_version"] == onnx.load_from_string(onnx_model()).ir_version
    assert report["producer"] == {"name": "pytorch", "version": "2.4.0"}
    assert report["op_counts"] == {"Conv": 1, "Relu": 1}
    assert report["parameter_count"] == 216 + 8
    assert report["weight_precision"] == "FP32"


def test_an_fp16_onnx_model_is_detected_as_fp16():
    report = inspect(onnx_model(dtype=np.float16), "detector.onnx")

    assert report["weight_precision"] == "FP16"
    assert report["weight_elements"] == {"f16": 224}
    assert report["inputs"][0]["element_type"] == "f16"


def test_a_quantized_onnx_model_with_int8_weights_is_detected_as_int8():
    report = inspect(onnx_model(quantized=True), "detector.onnx")

    assert report["weight_precision"] == "INT8"
    assert report["op_counts"]["DequantizeLinear"] == 1
    assert report["quantize_ops"] == 1
    assert report["weight_elements"]["i8"] == 216 + 1


def test_an_onnx_model_is_recognised_without_its_file_name():
    assert inspect(onnx_model(), "upload")["format"] == "onnx"


def test_a_static_batch_is_a_number_and_a_dynamic_one_its_name():
    assert inspect(onnx_model(batch=1), "m.onnx")["inputs"][0]["shape"] == [1, 3, 224, 224]
    assert inspect(onnx_model(batch="batch"), "m.onnx")["inputs"][0]["shape"][0] == "batch"


def external_data_model():
    """A model whose weights live in ``weights.bin`` beside it (ONNX external data)."""
    weights = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[8, 3, 3, 3])
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "weights.bin"), ("offset", "0"), ("length", "864")):
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["scores"])],
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 8, 6, 6])],
        [weights],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_external_data_is_named_but_never_opened():
    report = inspect(external_data_model(), "m.onnx")

    assert report["external_data"] == ["weights.bin"]
    assert report["parameter_count"] == 216


def test_a_zip_tells_which_external_data_files_it_lacks():
    with_data = inspect(zip_of({"m/model.onnx": external_data_model(), "m/weights.bin": b"\0" * 864}), "m.zip")
    without = inspect(zip_of({"m/model.onnx": external_data_model()}), "m.zip")

    assert "external_data_missing" not in with_data
    assert without["external_data_missing"] == ["weights.bin"]


def test_weight_data_is_skipped_so_a_big_model_parses_within_a_small_graph_limit():
    """1 MB of weights and a 64 KB graph limit: the weights are never kept."""
    big = onnx.helper.make_model(
        helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 512])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 512])],
            [onnx.numpy_helper.from_array(np.ones((512, 512), dtype=np.float32), "w")],
        )
    ).SerializeToString()

    report = inspect(big, "m.onnx", Limits(graph_bytes=64 * 1024))

    assert len(big) > 1_000_000
    assert report["parameter_count"] == 512 * 512


def test_a_truncated_protobuf_fails_with_a_reason():
    data = onnx_model()
    for cut in (len(data) - 1, len(data) // 2, 3):
        with pytest.raises(InspectionError, match="truncated"):
            inspect(data[:cut], "m.onnx")


def test_a_graph_past_the_size_limit_fails_with_a_reason():
    names = [f"node_{i}_" + "x" * 200 for i in range(200)]
    graph = helper.make_graph(
        [helper.make_node("Relu", [a], [b]) for a, b in zip(names, names[1:])],
        "g",
        [helper.make_tensor_value_info(names[0], TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info(names[-1], TensorProto.FLOAT, [1])],
    )
    data = helper.make_model(graph).SerializeToString()

    with pytest.raises(InspectionError, match="larger than the inspection limit"):
        inspect(data, "m.onnx", Limits(graph_bytes=10_000))


def unpacked_weights_model(count):
    """A model whose weights are written as ``count`` unpacked floats (one protobuf field each)."""
    weights = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[count])
    unpacked = b"".join(b"\x25" + bytes(4) for _ in range(count))  # field 4, wire type 5 (fixed32)
    tensor = weights.SerializeToString() + unpacked
    graph = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["y"])],
        "g",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [count])],
    ).SerializeToString()
    graph += b"\x2a" + _varint(len(tensor)) + tensor  # GraphProto.initializer (field 5)
    return b"\x08\x0a\x3a" + _varint(len(graph)) + graph  # ModelProto: ir_version 10, graph (field 7)


def _varint(value):
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def test_unpacked_tensor_data_is_skipped_not_kept(tmp_path):
    data = unpacked_weights_model(200_000)

    report, peak = inspect_with_peak(data, "m.onnx", tmp_path)

    assert len(data) > 1_000_000
    assert report["parameter_count"] == 200_000
    assert peak < 500_000


def test_a_file_of_countless_tiny_fields_ends_early():
    with pytest.raises(InspectionError, match="more than 10000 protobuf fields"):
        inspect(unpacked_weights_model(50_000), "m.onnx", Limits(onnx_fields=10_000))


def test_a_file_past_the_file_limit_is_not_read():
    with pytest.raises(InspectionError, match="larger than the inspection limit"):
        inspect(onnx_model(), "m.onnx", Limits(file_bytes=100))


def test_garbage_named_onnx_fails_and_unnamed_garbage_is_not_applicable():
    with pytest.raises(InspectionError):
        inspect(b"\x08\x07" + b"\xff" * 50, "m.onnx")
    with pytest.raises(NotApplicable):
        inspect(b"\x08\x07" + b"\xff" * 50, "m.tflite")


# --- OpenVINO IR ------------------------------------------------------------------------------


def test_an_ir_gives_its_signature_versions_framework_and_parameters():
    xml, _ = openvino_ir()
    report = inspect(xml, "model.xml")

    assert report["format"] == "openvino"
    assert report["ir_version"] == 11
    assert report["opset"] == 1
    assert report["inputs"] == [{"name": "image", "shape": ["?", 3, 224, 224], "element_type": "f32"}]
    assert report["outputs"] == [{"name": "scores", "shape": ["?", 8, 222, 222], "element_type": "f32"}]
    assert report["producer"] == {"framework": "onnx", "runtime_version": "2024.4.0-16579"}
    assert report["rt_info"]["conversion_parameters/framework"] == "onnx"
    assert report["op_counts"] == {"Const": 1, "Convolution": 1, "Parameter": 1, "Result": 1}
    assert report["parameter_count"] == 216
    assert report["weight_precision"] == "FP32"


def test_an_ir_with_fp16_weights_is_detected_as_fp16():
    xml, _ = openvino_ir(weights="f16")
    assert inspect(xml, "model.xml")["weight_precision"] == "FP16"


def test_an_ir_with_int8_weights_and_fake_quantize_is_detected_as_int8():
    xml, _ = openvino_ir(weights="i8", fake_quantize=True)
    report = inspect(xml, "model.xml")

    assert report["weight_precision"] == "INT8"
    assert report["quantize_ops"] == 1
    assert report["op_counts"]["FakeQuantize"] == 1


def test_fake_quantize_alone_makes_an_fp32_ir_int8():
    xml, _ = openvino_ir(weights="f32", fake_quantize=True)
    assert inspect(xml, "model.xml")["weight_precision"] == "INT8"


def test_a_subgraph_s_parameters_and_results_are_counted_but_not_graph_inputs():
    xml, _ = openvino_ir()
    body = (
        b'<layer id="90" name="loop" type="TensorIterator" version="opset1"><body><layers>'
        b'<layer id="0" name="inner_in" type="Parameter" version="opset1"><data shape="1" element_type="f32"/>'
        b'<output><port id="0" precision="FP32" names="inner_in"><dim>1</dim></port></output></layer>'
        b'<layer id="1" name="inner_out" type="Result" version="opset1">'
        b'<input><port id="0" precision="FP32"><dim>1</dim></port></input></layer>'
        b"</layers><edges/></body></layer>"
    )
    report = inspect(xml.replace(b"</layers>", body + b"</layers>", 1), "model.xml")

    assert [t["name"] for t in report["inputs"]] == ["image"]
    assert [t["name"] for t in report["outputs"]] == ["scores"]
    assert report["op_counts"]["Parameter"] == 2 and report["op_counts"]["TensorIterator"] == 1


def test_an_ir_with_countless_inputs_lists_a_thousand_and_counts_them_all():
    parameters = "".join(
        f'<layer id="{i}" name="in{i}" type="Parameter" version="opset1"><data shape="1" element_type="f32"/></layer>'
        for i in range(1200)
    )
    report = inspect(f'<net version="11"><layers>{parameters}</layers></net>'.encode(), "model.xml")

    assert len(report["inputs"]) == 1000 and report["input_count"] == 1200
    assert report["op_counts"] == {"Parameter": 1200}


def test_an_ir_written_by_openvino_is_read():
    """``openvino.save_model(..., compress_to_fp16=True)`` of the test ONNX model (OpenVINO 2026.4)."""
    report = inspect((DATA / "openvino_fp16.xml").read_bytes(), "model.xml")

    assert report["ir_version"] == 11
    assert report["inputs"] == [{"name": "image", "shape": ["?", 3, 224, 224], "element_type": "f32"}]
    assert report["outputs"] == [{"name": "scores", "shape": ["?", 8, 222, 222], "element_type": "f32"}]
    assert report["weight_precision"] == "FP16"
    assert report["producer"]["runtime_version"].startswith("2026.4.1")


def test_a_geti_export_zip_lists_its_files_and_inspects_the_ir_inside():
    report = inspect(geti_export(weights="f16"), "export.zip")

    assert report["container"] == "zip"
    assert report["model_file"] == "model.xml"
    assert report["files"] == [
        {"name": "model.xml", "size": len(openvino_ir(weights="f16")[0])},
        {"name": "model.bin", "size": 432},
        {"name": "config.json", "size": 21},
    ]
    assert report["weight_precision"] == "FP16"


def test_a_zip_without_a_model_is_not_applicable_but_lists_its_files():
    with pytest.raises(NotApplicable) as caught:
        inspect(zip_of({"readme.txt": b"hello", "config.xml": b"<config/>"}), "x.zip")
    assert caught.value.details["files"] == [{"name": "readme.txt", "size": 5}, {"name": "config.xml", "size": 9}]


# --- Hostile files ------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE net [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<net version="11"><layers><layer id="0" name="&lol9;" type="Parameter"/></layers></net>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE net [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<net version="11"><layers><layer id="0" name="&secret;" type="Parameter"/></layers></net>"""


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["entity-expansion", "external-entity"])
def test_xml_with_a_dtd_or_entities_fails_before_anything_is_expanded(xml):
    with pytest.raises(InspectionError, match="could not be parsed safely"):
        inspect(xml, "model.xml")


def test_deeply_nested_xml_fails_with_a_reason():
    xml = b'<net version="11">' + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</net>"
    with pytest.raises(InspectionError, match="nests deeper than 64"):
        inspect(xml, "model.xml")


def test_an_ir_is_read_in_memory_that_does_not_grow_with_its_elements(tmp_path):
    """A hundred thousand elements: each is forgotten once read (kept, they take 8 MB)."""
    xml, _ = openvino_ir()
    padded = xml.replace(b"<edges>", b"<extra>" + b"<x/>" * 100_000 + b"</extra><edges>")

    report, peak = inspect_with_peak(padded, "model.xml", tmp_path)

    assert report["parameter_count"] == 216 and report["outputs"][0]["name"] == "scores"
    assert peak < 2_000_000


def test_xml_past_the_size_limit_fails_with_a_reason():
    xml, _ = openvino_ir()
    with pytest.raises(InspectionError, match="larger than the inspection limit of 1000 bytes"):
        inspect(xml, "model.xml", Limits(graph_bytes=1000))


def test_malformed_xml_fails_with_a_reason():
    with pytest.raises(InspectionError, match="could not be parsed"):
        inspect(b'<net version="11"><layers>', "model.xml")


def test_other_xml_is_not_applicable():
    with pytest.raises(NotApplicable, match="not an OpenVINO IR"):
        inspect(b"<svg></svg>", "drawing.xml")


def test_a_zip_bomb_member_is_refused_by_what_it_declares():
    bomb = zip_of({"model.xml": b"<" + b" " * 50_000_000, "model.bin": b""})
    with pytest.raises(InspectionError, match="zip bomb"):
        inspect(bomb, "bomb.zip")


def test_a_zip_member_over_the_graph_limit_is_refused_unread():
    with pytest.raises(InspectionError, match="over the inspection limit"):
        inspect(geti_export(), "export.zip", Limits(graph_bytes=500))


def test_a_corrupt_zip_fails_with_a_reason():
    data = geti_export()
    with pytest.raises(InspectionError, match="corrupt"):
        inspect(data[:40], "export.zip")


# --- Pickles ---------------------------------------------------------------------------------


class WritesAFile:
    """Unpickling this creates a file: proof a pickle was loaded."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_is_labelled_and_never_loaded(tmp_path):
    marker = tmp_path / "unpickled"
    data = pickle.dumps(WritesAFile(marker), protocol=4)

    for name in ("model.pkl", "weights.pth", "model.pt", "upload"):
        with pytest.raises(NotApplicable) as caught:
            inspect(data, name)
        assert caught.value.kind == "pickle"
    assert not marker.exists()


def test_a_pytorch_zip_holding_data_pkl_is_labelled_pickle(tmp_path):
    marker = tmp_path / "unpickled"
    data = zip_of({"archive/data.pkl": pickle.dumps(WritesAFile(marker)), "archive/version": b"3"}, zipfile.ZIP_STORED)

    with pytest.raises(NotApplicable) as caught:
        inspect(data, "model.zip")
    assert caught.value.kind == "pickle"
    assert caught.value.details["file_count"] == 2
    assert not marker.exists()


def test_other_files_are_not_applicable():
    with pytest.raises(NotApplicable, match="nothing to inspect"):
        inspect(b"TFL3" + b"\0" * 100, "model.tflite")
