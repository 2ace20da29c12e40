"""Rewrite the @imgly ISNet ONNX graph to take any input size. A script for the converter venv.

The exported graph declares its input as 1x3x1024x1024, and every one of its 39 ``Resize`` nodes
(``_upsample_like(src, tar)`` in ISNet's code) was traced with its target size as a constant, so
feeding another size fails at the first ``Concat``. In this network every upsample target is a
fixed multiple of its source (x2 between stages, up to x64 for the side outputs), so each ``Resize``
is rewritten to use those scales instead of the traced sizes; the nodes that computed the sizes are
then dead and removed. Batch, height and width become symbolic, the traced intermediate shapes are
dropped, and the nodes are stored in topological order (the fp16 export appended its casts last).

Any height and width that are multiples of 64 give exactly the original arithmetic (the deepest
feature map is 1/64 of the input); at 1024x1024 the output equals the original model's to within
float rounding (checked: max abs difference 1e-5, no pixel changes side of 0.5).

It imports nothing from this project. Usage: python isnet_to_dynamic.py IN_ONNX OUT_ONNX
"""

from __future__ import annotations

import argparse

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference


def _constant(graph: onnx.GraphProto, name: str) -> np.ndarray:
    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return numpy_helper.to_array(node.attribute[0].t)
    raise ValueError(f"{name} is not a constant of the graph")


def _target_hw(graph: onnx.GraphProto, sizes: str) -> np.ndarray:
    """The traced (height, width) a Resize aims at: a constant, or Concat(Shape(x)[:2], constant)."""
    producer = next((n for n in graph.node if sizes in n.output), None)
    if producer is not None and producer.op_type == "Concat":
        return _constant(graph, producer.input[1])
    return _constant(graph, sizes)[2:]


def to_scales(model: onnx.ModelProto) -> int:
    """Replace every Resize's traced sizes by the scales they imply; returns how many were rewritten."""
    inferred = shape_inference.infer_shapes(model)
    g = inferred.graph
    shapes = {
        vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
        for vi in [*g.value_info, *g.input, *g.output]
    }
    graph = model.graph
    count = 0
    for node in graph.node:
        if node.op_type != "Resize" or len(node.input) < 4 or not node.input[3]:
            continue
        src = shapes[node.input[0]]
        hw = _target_hw(graph, node.input[3])
        if hw[0] % src[2] or hw[1] % src[3]:
            raise ValueError(f"{node.name}: {src[2:]} -> {hw.tolist()} is not a whole-number upscale")
        scales = np.array([1, 1, hw[0] // src[2], hw[1] // src[3]], np.float32)
        name = f"{node.name}/scales"
        graph.initializer.append(numpy_helper.from_array(scales, name))
        x = node.input[0]
        del node.input[:]
        node.input.extend([x, "", name])
        count += 1
    return count


def prune(graph: onnx.GraphProto) -> None:
    """Drop nodes whose outputs nothing reads, then initializers nothing reads."""
    outputs = {o.name for o in graph.output}
    while True:
        used = {i for n in graph.node for i in n.input} | outputs
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    used = {i for n in graph.node for i in n.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)


def sort_nodes(graph: onnx.GraphProto) -> None:
    """Store the nodes in topological order, as the ONNX checker requires."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    todo, order = list(graph.node), []
    while todo:
        rest = []
        for node in todo:
            if all(i in ready for i in node.input):
                order.append(onnx.NodeProto.FromString(node.SerializeToString()))
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(todo):
            raise ValueError(f"the graph has a cycle or a missing input at {rest[0].name}")
        todo = rest
    del graph.node[:]
    graph.node.extend(order)


def make_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    if to_scales(model) == 0:
        raise ValueError("no Resize with traced sizes found: is this the @imgly ISNet graph?")
    graph = model.graph
    prune(graph)
    del graph.value_info[:]
    for value in [*graph.input, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        for i, name in ((0, "batch"), (2, "height"), (3, "width")):
            dims[i].ClearField("dim_value")
            dims[i].dim_param = name
    sort_nodes(graph)
    onnx.checker.check_model(model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("src")
    parser.add_argument("dst")
    args = parser.parse_args()
    onnx.save(make_dynamic(onnx.load(args.src)), args.dst)


if __name__ == "__main__":
    main()
