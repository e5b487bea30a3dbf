"""Inspection cost: wall time and peak resident memory of inspecting big and hostile files.

Each case runs ``models_app.inspection.inspect_file`` in a fresh Python process on a file written
to a temporary directory, and reports the time of the inspection itself, the process's resident
memory once the inspectors are imported (``RSS``) and its peak during the inspection
(``VmHWM``; the import itself may set it). The files:

- ``onnx-weights``: an ONNX model holding ``--weights-mib`` of float32 weights (one MatMul chain);
- ``onnx-nodes``: an ONNX graph of ``--nodes`` small nodes, no weights;
- ``ir-layers``: an OpenVINO IR XML of ``--nodes`` layers;
- ``zip-ir``: a stored zip of that IR's XML and ``--weights-mib`` of ``.bin``;
- ``deep-xml``: XML nested a million elements deep (refused at depth 64);
- ``truncated``: the ``onnx-weights`` file cut in half (refused at its end).

Run: ``.venv/bin/python bench/inspection.py [--weights-mib 512] [--nodes 50000]``.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from models_app.inspection import InspectionError, NotApplicable, inspect_file


def status_kib(key):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(key + ":"))


path, name = sys.argv[2], sys.argv[3]
before = status_kib("VmRSS")
start = time.perf_counter()
with open(path, "rb") as handle:
    size = handle.seek(0, 2)
    handle.seek(0)
    try:
        report = inspect_file(handle, name, size)
        outcome = f"done: {report['parameter_count']} parameters, {report['weight_precision']}"
    except (InspectionError, NotApplicable) as exc:
        outcome = f"{type(exc).__name__}: {str(exc)[:60]}"
elapsed = time.perf_counter() - start
peak = status_kib("VmHWM")
print(json.dumps({"seconds": elapsed, "base_kib": before, "peak_kib": peak, "outcome": outcome}))
"""


def onnx_weights(path, mib):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    side = 1024
    count = max(1, mib * 1024 * 1024 // (side * side * 4))
    nodes, inits, previous = [], [], "x"
    for i in range(count):
        inits.append(numpy_helper.from_array(np.full((side, side), i, dtype=np.float32), f"w{i}"))
        nodes.append(helper.make_node("MatMul", [previous, f"w{i}"], [f"y{i}"]))
        previous = f"y{i}"
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", side])],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, ["N", side])],
        inits,
    )
    path.write_bytes(onnx.helper.make_model(graph).SerializeToString())


def onnx_nodes(path, nodes):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"], name=f"relu_{i}") for i in range(nodes)],
        "g",
        [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info(f"t{nodes}", TensorProto.FLOAT, [1, 64])],
    )
    path.write_bytes(onnx.helper.make_model(graph).SerializeToString())


def ir_xml(layers):
    port = '<port id="{}" precision="FP32"><dim>1</dim><dim>64</dim></port>'
    body = [
        '<layer id="0" name="x" type="Parameter" version="opset1"><data shape="1,64" element_type="f32"/>'
        f"<output>{port.format(0)}</output></layer>"
    ]
    edges = []
    for i in range(1, layers):
        body.append(
            f'<layer id="{i}" name="relu_{i}" type="ReLU" version="opset1"><input>{port.format(0)}</input>'
            f"<output>{port.format(1)}</output></layer>"
        )
        edges.append(f'<edge from-layer="{i - 1}" from-port="{0 if i == 1 else 1}" to-layer="{i}" to-port="0"/>')
    body.append(f'<layer id="{layers}" name="y" type="Result" version="opset1"><input>{port.format(0)}</input></layer>')
    edges.append(f'<edge from-layer="{layers - 1}" from-port="1" to-layer="{layers}" to-port="0"/>')
    layers_xml, edges_xml = "".join(body), "".join(edges)
    return (
        f'<?xml version="1.0"?><net version="11"><layers>{layers_xml}</layers><edges>{edges_xml}</edges></net>'.encode()
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights-mib", type=int, default=512)
    parser.add_argument("--nodes", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = []
        onnx_weights(tmp / "weights.onnx", args.weights_mib)
        cases.append(("onnx-weights", tmp / "weights.onnx", "weights.onnx"))
        onnx_nodes(tmp / "nodes.onnx", args.nodes)
        cases.append(("onnx-nodes", tmp / "nodes.onnx", "nodes.onnx"))
        xml = ir_xml(args.nodes)
        (tmp / "model.xml").write_bytes(xml)
        cases.append(("ir-layers", tmp / "model.xml", "model.xml"))
        with zipfile.ZipFile(tmp / "export.zip", "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("model.xml", xml)
            with archive.open("model.bin", "w", force_zip64=True) as member:
                for _ in range(args.weights_mib):
                    member.write(bytes(1024 * 1024))
        cases.append(("zip-ir", tmp / "export.zip", "export.zip"))
        (tmp / "deep.xml").write_bytes(b'<net version="11">' + b"<a>" * 1_000_000 + b"</a>" * 1_000_000 + b"</net>")
        cases.append(("deep-xml", tmp / "deep.xml", "deep.xml"))
        data = (tmp / "weights.onnx").read_bytes()
        (tmp / "truncated.onnx").write_bytes(data[: len(data) // 2])
        del data
        cases.append(("truncated", tmp / "truncated.onnx", "truncated.onnx"))

        print(f"{'case':<14}{'file MiB':>10}{'seconds':>10}{'RSS MiB':>9}{'peak MiB':>10}  outcome")
        for label, path, name in cases:
            result = subprocess.run(
                [sys.executable, "-c", CHILD, str(ROOT), str(path), name], capture_output=True, text=True, check=True
            )
            row = json.loads(result.stdout)
            print(
                f"{label:<14}{path.stat().st_size / 2**20:>10.1f}{row['seconds']:>10.2f}"
                f"{row['base_kib'] / 1024:>9.0f}{row['peak_kib'] / 1024:>10.0f}  {row['outcome']}"
            )


if __name__ == "__main__":
    main()
