"""Convert a TF.js graph model (model.json + weight shards) to ONNX. A script for the converter venv.

Run by `tfjs_convert.convert_tfjs` with the converter venv's interpreter (TensorFlow + tf2onnx); it
imports nothing from this project. Steps:

1. model.json's `modelTopology` is a TensorFlow GraphDef in protobuf-JSON form: parse it.
2. Read the weight shards named in `weightsManifest` (dequantising float16/uint8/uint16 weights to
   float32) and put each weight into its Const node's `value`.
3. TF.js's converter fuses Conv2D / DepthwiseConv2dNative + BiasAdd (+ activation) into the
   grappler-only ops `_FusedConv2D` / `FusedDepthwiseConv2dNative`, which tf2onnx cannot convert:
   split each back into the plain ops, the last one keeping the fused node's name so consumers stay
   wired.
4. Hand the GraphDef to tf2onnx with the signature's inputs and outputs.

Usage: python tfjs_to_onnx.py MODEL_JSON OUT_ONNX [--opset N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf2onnx
from google.protobuf.json_format import ParseDict

_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_QUANTISED = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}
_ACTIVATIONS = {"Relu", "Relu6", "Elu", "Sigmoid", "Tanh", "LeakyRelu"}
_CONV_ATTRS = {
    "_FusedConv2D": ("Conv2D", ("T", "strides", "padding", "explicit_paddings", "data_format", "dilations")),
    "FusedDepthwiseConv2dNative": (
        "DepthwiseConv2dNative",
        ("T", "strides", "padding", "explicit_paddings", "data_format", "dilations"),
    ),
}


def read_weights(model: dict, folder: Path) -> dict[str, np.ndarray]:
    """Weights by name, as float32/int32 arrays of their declared shapes."""
    weights: dict[str, np.ndarray] = {}
    for group in model["weightsManifest"]:
        buffer = b"".join((folder / path).read_bytes() for path in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = [int(d) for d in spec["shape"]]
            count = int(np.prod(shape, dtype=np.int64))
            quant = spec.get("quantization")
            stored = np.dtype(_QUANTISED[quant["dtype"]] if quant else _DTYPES[spec["dtype"]])
            nbytes = count * stored.itemsize
            raw = np.frombuffer(buffer, dtype=stored, count=count, offset=offset)
            offset += nbytes
            if quant and quant["dtype"] != "float16":
                raw = raw.astype(np.float32) * quant["scale"] + quant["min"]
            weights[spec["name"]] = raw.astype(_DTYPES[spec["dtype"]]).reshape(shape)
        if offset != len(buffer):
            raise ValueError(f"weights use {offset} bytes, shards hold {len(buffer)}")
    return weights


def _fused_ops(node: tf.compat.v1.NodeDef) -> list[str]:
    return [op.decode() for op in node.attr["fused_ops"].list.s]


def unfuse(graph: tf.compat.v1.GraphDef) -> tf.compat.v1.GraphDef:
    """Split every `_FusedConv2D` / `FusedDepthwiseConv2dNative` into conv + BiasAdd (+ activation)."""
    out = tf.compat.v1.GraphDef()
    out.versions.CopyFrom(graph.versions)
    out.library.CopyFrom(graph.library)
    for node in graph.node:
        if node.op not in _CONV_ATTRS:
            out.node.add().CopyFrom(node)
            continue
        ops = _fused_ops(node)
        if ops[:1] != ["BiasAdd"] or len(ops) > 2 or (len(ops) == 2 and ops[1] not in _ACTIVATIONS):
            raise ValueError(f"{node.name}: cannot unfuse fused_ops={ops}")
        conv_op, attrs = _CONV_ATTRS[node.op]
        conv = out.node.add(name=f"{node.name}/conv", op=conv_op, input=node.input[:2], device=node.device)
        for key in attrs:
            if key in node.attr:
                conv.attr[key].CopyFrom(node.attr[key])
        bias_name = node.name if len(ops) == 1 else f"{node.name}/bias"
        bias = out.node.add(
            name=bias_name, op="BiasAdd", input=[conv.name, node.input[2]], device=node.device
        )
        bias.attr["T"].CopyFrom(node.attr["T"])
        bias.attr["data_format"].CopyFrom(node.attr["data_format"])
        if len(ops) == 2:
            act = out.node.add(name=node.name, op=ops[1], input=[bias_name], device=node.device)
            act.attr["T"].CopyFrom(node.attr["T"])
            if ops[1] == "LeakyRelu":
                act.attr["alpha"].f = node.attr["leakyrelu_alpha"].f
    return out


def load_graph(model_json: Path) -> tuple[tf.compat.v1.GraphDef, list[str], list[str]]:
    """The unfused GraphDef with weights in place, and the signature's input and output tensor names."""
    model = json.loads(model_json.read_text())
    graph = ParseDict(model["modelTopology"], tf.compat.v1.GraphDef())
    weights = read_weights(model, model_json.parent)
    for node in graph.node:
        if node.op == "Const" and node.name in weights:
            # TF.js has no int64: such constants are stored as int32; restore the node's own dtype.
            declared = tf.as_dtype(node.attr["dtype"].type) if "dtype" in node.attr else None
            value = weights.pop(node.name)
            if declared is not None:
                value = value.astype(declared.as_numpy_dtype)
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
            node.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
    if weights:
        raise ValueError(f"weights with no Const node: {sorted(weights)[:5]}")
    signature = model["signature"]

    def tensor(name: str) -> str:
        return name if ":" in name else f"{name}:0"

    inputs = [tensor(v["name"]) for v in signature["inputs"].values()]
    outputs = [tensor(v["name"]) for v in signature["outputs"].values()]
    return unfuse(graph), inputs, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_json", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--opset", type=int, default=13)
    args = parser.parse_args()
    graph, inputs, outputs = load_graph(args.model_json)
    tf2onnx.convert.from_graph_def(
        graph, input_names=inputs, output_names=outputs, opset=args.opset, output_path=str(args.out)
    )
    print(f"converted {args.model_json.name}: inputs {inputs}, outputs {outputs}")


if __name__ == "__main__":
    main()
