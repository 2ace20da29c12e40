"""Closed-vocabulary mapping for the lite stack: user words -> COCO-80 names -> ImageNet-1k classes.

The lite detector only knows the 80 COCO classes, so every prompt is mapped to COCO names first
(``pedestrian`` -> ``person``, ``vehicle`` -> car/truck/bus/motorcycle); a word that maps to none is
refused with :class:`UnknownLabel`, never dropped silently. The lite verifier is an ImageNet-1k
classifier: a label is verified by summing the probabilities of the ImageNet classes it covers,
found through the WordNet 3.0 noun hierarchy shipped in ``imagenet_wordnet.json`` (the 1000
ImageNet synsets plus their 860 ancestors, derived once from the WordNet 3.0 database). COCO names
use hand-checked hierarchy roots because a bare lemma lookup goes wrong (ImageNet's "kite" is a bird,
"oven" covers microwaves, the only "person" classes are scuba diver, groom and ballplayer).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from tools.models.coco80 import COCO80

_SYNONYM_GROUPS: dict[tuple[str, ...], str] = {
    ("person",): "pedestrian, people, persons, human, man, men, woman, women, child, children, kid, boy, "
    "girl, adult, baby, player, rider, worker, passenger",
    ("car", "truck", "bus", "motorcycle"): "vehicle, motor vehicle, road vehicle",
    ("motorcycle", "bicycle"): "two wheeler",
    ("car",): "automobile, auto, taxi, cab, sedan, suv, jeep",
    ("truck",): "lorry, pickup, pickup truck, van",
    ("bus",): "coach, autobus, minibus, school bus, trolleybus",
    ("bicycle",): "bike, cycle, push bike",
    ("motorcycle",): "motorbike, motor bike, scooter, moped",
    ("airplane",): "plane, aeroplane, aircraft, jet, airliner",
    ("boat",): "ship, vessel, canoe, kayak, yacht, sailboat",
    ("dog",): "puppy, puppies, doggy, hound",
    ("cat",): "kitten, kitty",
    ("cow",): "cattle, ox, bull, calf",
    ("sheep",): "lamb, ram",
    ("horse",): "pony, foal",
    ("tv",): "television, tv set, tv monitor, tvmonitor, monitor, screen",
    ("couch",): "sofa",
    ("cell phone",): "cellphone, phone, mobile phone, smartphone, mobile",
    ("handbag",): "purse, bag",
    ("backpack",): "rucksack",
    ("suitcase",): "luggage, baggage",
    ("tie",): "necktie, bow tie",
    ("sports ball",): "ball, football, soccer ball, basketball, tennis ball",
    ("dining table",): "table, desk",
    ("potted plant",): "plant, houseplant, pottedplant, flowerpot",
    ("hair drier",): "hair dryer, hairdryer, blow dryer",
    ("donut",): "doughnut",
    ("remote",): "remote control",
    ("laptop",): "notebook, laptop computer",
    ("refrigerator",): "fridge",
    ("skis",): "ski",
    ("wine glass",): "glass, wineglass",
    ("cup",): "mug",
    ("teddy bear",): "teddy, stuffed animal",
    ("hot dog",): "hotdog",
    ("stop sign",): "stop",
    ("traffic light",): "traffic signal, stoplight",
    ("fire hydrant",): "hydrant",
}
SYNONYMS: dict[str, tuple[str, ...]] = {
    word.strip(): names for names, words in _SYNONYM_GROUPS.items() for word in words.split(",")
}
_IRREGULAR_PLURALS = {"knives": "knife", "mice": "mouse", "skis": "skis", "buses": "bus", "couches": "couch"}

# Hand-checked WordNet 3.0 roots per COCO name; "-" excludes a synset (with its hyponyms). A drink
# stands for its vessel (espresso -> cup, red wine -> wine glass): ImageNet labels such photos by it.
# COCO names absent here have no ImageNet-1k class (person, giraffe, kite, frisbee, ...).
IMAGENET_ROOTS: dict[str, tuple[str, ...]] = {
    "bicycle": ("n02834778",), "car": ("n02958343",), "motorcycle": ("n03790512", "n03791053"),
    "airplane": ("n02691156", "n04552348"), "bus": ("n02924116",),
    "train": ("n04468005", "n03684823", "n03895866", "n03393912", "n04335435"),
    "truck": ("n04490091", "-n03770679"), "boat": ("n04530566", "-n04347754"),
    "traffic light": ("n06874185",), "stop sign": ("n06794110",), "parking meter": ("n03891332",),
    "bench": ("n03891251",), "bird": ("n01503061",), "cat": ("n02121808",), "dog": ("n02084071",),
    "horse": ("n02374451",), "sheep": ("n02411705",), "cow": ("n02402425", "n02408429"),
    "elephant": ("n02503517",), "bear": ("n02131653",), "zebra": ("n02391049",),
    "backpack": ("n02769748",), "umbrella": ("n04507155",), "handbag": ("n04026417",),
    "tie": ("n03815615",), "skis": ("n04228054",), "sports ball": ("n02778669", "-n04023962"),
    "tennis racket": ("n04039381",), "bottle": ("n02876657",), "wine glass": ("n03443371", "n07892512"),
    "cup": ("n03797390", "n07930864", "n07920052"), "knife": ("n03623556",), "spoon": ("n04284002",),
    "bowl": ("n02880940",), "banana": ("n07753592",), "apple": ("n07739125",),
    "sandwich": ("n07695965",), "orange": ("n07747607",), "broccoli": ("n07714990",),
    "hot dog": ("n07697537",), "pizza": ("n07873807",), "chair": ("n03001627",),
    "couch": ("n04256520",), "potted plant": ("n03991062",), "bed": ("n02818832", "n02766320"),
    "dining table": ("n03201208",), "toilet": ("n04447861",), "tv": ("n04404412", "n03782006"),
    "laptop": ("n03985232",), "mouse": ("n03793489",), "remote": ("n04074963",),
    "keyboard": ("n03085013",), "cell phone": ("n02992529",), "microwave": ("n03761084",),
    "oven": ("n04330267",), "toaster": ("n04442312",), "sink": ("n04553703",),
    "refrigerator": ("n04070727",), "book": ("n07248320", "n06596364"), "clock": ("n03046257",),
    "vase": ("n04522168",), "teddy bear": ("n04399382",), "hair drier": ("n03483316",),
}  # fmt: skip


class UnknownLabel(ValueError):
    """A label the closed-vocabulary detector cannot look for; the message lists what it can."""

    def __init__(self, label: str) -> None:
        self.label = label
        super().__init__(
            f"cannot detect {label!r}: the lite detector knows only the 80 COCO classes "
            f"({', '.join(COCO80)}) and synonyms such as pedestrian, vehicle, puppy, bike, sofa, phone"
        )


def normalize(label: str) -> str:
    """Lower-case, ``_``/``-`` to spaces, no leading article: ``" A Traffic_Light"`` -> ``traffic light``."""
    words = re.sub(r"[_\-]", " ", label).lower().split()
    return " ".join(words[1:] if len(words) > 1 and words[0] in ("a", "an", "the") else words)


def _singulars(word: str) -> list[str]:
    """Candidate singular forms of the last word of ``word`` (plural rules, best guess first)."""
    head, _, last = word.rpartition(" ")
    prefix = f"{head} " if head else ""
    forms = [_IRREGULAR_PLURALS[last]] if last in _IRREGULAR_PLURALS else []
    if last.endswith("ies"):
        forms.append(last[:-3] + "y")
    if last.endswith("es"):
        forms.append(last[:-2])
    if last.endswith("s") and not last.endswith("ss"):
        forms.append(last[:-1])
    return [prefix + f for f in forms]


def to_coco(label: str) -> tuple[str, ...]:
    """COCO names a user label stands for; raises :class:`UnknownLabel` if there are none."""
    word = normalize(label)
    for candidate in [word, *_singulars(word)]:
        if candidate in COCO80:
            return (candidate,)
        if candidate in SYNONYMS:
            return SYNONYMS[candidate]
    raise UnknownLabel(label)


@cache
def _wordnet() -> tuple[list[str], dict[str, list[str]], dict[str, list[str]]]:
    """ImageNet synsets in class-index order, children per synset, synsets per lemma."""
    data = json.loads((Path(__file__).with_name("imagenet_wordnet.json")).read_text())
    children: dict[str, list[str]] = {}
    by_lemma: dict[str, list[str]] = {}
    for synset, (lemmas, parents) in data["synsets"].items():
        for parent in parents:
            children.setdefault(parent, []).append(synset)
        for lemma in lemmas:
            by_lemma.setdefault(lemma, []).append(synset)
    return data["imagenet"], children, by_lemma


def _covered(synsets: tuple[str, ...] | list[str]) -> frozenset[int]:
    """ImageNet class indices under the given synsets, minus those under ``-``-prefixed ones."""
    imagenet, children, _ = _wordnet()
    index = {s: i for i, s in enumerate(imagenet)}

    def below(root: str) -> set[int]:
        found, stack = set(), [root]
        while stack:
            synset = stack.pop()
            if synset in index:
                found.add(index[synset])
            stack.extend(children.get(synset, ()))
        return found

    keep = set().union(*(below(s) for s in synsets if not s.startswith("-")))
    drop = set().union(*(below(s[1:]) for s in synsets if s.startswith("-")))
    return frozenset(keep - drop)


def imagenet_classes(label: str) -> frozenset[int]:
    """ImageNet-1k class indices a label covers; empty when it cannot be verified.

    Labels the detector vocabulary knows go through their COCO names and the hand-checked roots
    (``pedestrian`` -> person -> empty). Other words are looked up as WordNet lemmas among the
    ImageNet classes and their ancestors (``golden retriever``, ``feline``, ``fruit``).
    """
    try:
        coco = to_coco(label)
    except UnknownLabel:
        _, _, by_lemma = _wordnet()
        word = normalize(label)
        for candidate in [word, *_singulars(word)]:
            if candidate in by_lemma:
                return _covered(by_lemma[candidate])
        return frozenset()
    return frozenset().union(*(_covered(IMAGENET_ROOTS.get(name, ())) for name in coco))
