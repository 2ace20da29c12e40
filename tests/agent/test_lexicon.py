# ruff: noqa: E501  (the parametrize tables read best one case per line)
"""The agent's words per language: English by default, Spanish shipped, merged for a server."""

from __future__ import annotations

import pytest

from agent.grounding import ground
from agent.lexicon import ENGLISH, SPANISH, languages, merge
from agent.pending import is_confirmation
from agent.request import Request
from tests.agent.conftest import args_of
from tools.registry import ToolError

BOTH = merge(ENGLISH, SPANISH)

DELETE, STATUS, COUNT = (args_of(t) for t in ("delete_annotations", "set_status", "count"))


@pytest.mark.parametrize(
    ("text", "english", "spanish"),
    [
        ("yes", True, False),
        ("go ahead, please", True, False),
        ("sí", False, True),
        ("si", False, True),
        ("¡Sí, por favor!", False, True),
        ("vale", False, True),
        ("de acuerdo, gracias", False, True),
        ("sí, pero solo los coches", False, False),  # more than a plain yes: never a confirmation
        ("no", False, False),
    ],
)
def test_a_plain_yes_in_each_language(text: str, english: bool, spanish: bool) -> None:
    assert is_confirmation(text) is english  # the default is English
    assert is_confirmation(text, SPANISH) is spanish
    assert is_confirmation(text, BOTH) is (english or spanish)


def spanish(text: str, lexicon=SPANISH) -> Request:
    return Request(text, frozenset({"coche", "perro"}), current=text, lexicon=lexicon)


def test_a_spanish_delete_is_asked_for_only_with_the_spanish_words() -> None:
    args = {"label": "coche"}
    with pytest.raises(ToolError, match="did not ask to delete"):
        ground(DELETE, args, Request("borra los coches", frozenset({"coche"})))
    assert ground(DELETE, args, spanish("borra los coches")).args == {"label": "coche"}
    assert ground(DELETE, args, spanish("borra los coches", BOTH)).args == {"label": "coche"}


def test_scores_in_spanish_words_keep_their_side() -> None:
    said = spanish("borra los perros por debajo de 0.4")
    grounded = ground(DELETE, {"label": "perro", "min_score": 0.4}, said)
    assert grounded.args == {"label": "perro", "max_score": 0.4}
    above = ground(COUNT, {"label": "perro", "max_score": 0.7}, spanish("cuenta los perros con más de 0.7"))
    assert above.args == {"label": "perro", "min_score": 0.7}


def test_spanish_status_words_ground_a_review() -> None:
    request = spanish("rechaza las propuestas de perro")
    grounded = ground(STATUS, {"label": "perro", "status": "rejected", "current_status": "proposed"}, request)
    assert grounded.args == {"label": "perro", "status": "rejected", "current_status": "proposed"}
    with pytest.raises(ToolError, match="did not ask to accept"):
        ground(
            STATUS,
            {"status": "rejected"},
            Request("rechaza las propuestas", current="rechaza"),
        )


def test_english_rules_are_unchanged_by_merging() -> None:
    for lexicon in (ENGLISH, BOTH):
        request = Request("delete the cars under 0.3", frozenset({"car"}), current=None, lexicon=lexicon)
        grounded = ground(DELETE, {"label": "cars", "min_score": 0.3, "status": "accepted"}, request)
        assert grounded.args == {"label": "car", "max_score": 0.3}


def test_languages_by_name() -> None:
    assert languages("en") is ENGLISH
    assert languages("en, es").name == "en+es"
    with pytest.raises(ValueError, match=r"some of \['en', 'es'\].*'fr'"):
        languages("fr")


@pytest.mark.parametrize(
    ("text", "lexicon", "given", "kept"),
    [
        ("reject the cars we are less than half sure of", ENGLISH, {"min_score": 0.5}, {"max_score": 0.5}),
        ("count the cars above a quarter", ENGLISH, {"max_score": 0.25}, {"min_score": 0.25}),
        (
            "borra los coches con menos de la mitad de confianza",
            SPANISH,
            {"min_score": 0.5},
            {"max_score": 0.5},
        ),
    ],
)
def test_scores_said_in_words(text: str, lexicon, given: dict, kept: dict) -> None:
    request = Request(text, frozenset({"car", "coche"}), current=text, lexicon=lexicon)
    tool = "count" if text.startswith("count") else "delete_annotations" if "borra" in text else "set_status"
    args = {"label": "coche" if "coche" in text else "car", **given}
    if tool == "set_status":
        args["status"] = "rejected"
    grounded = ground(args_of(tool), args, request)
    assert {k: v for k, v in grounded.args.items() if k.endswith("_score")} == kept


@pytest.mark.parametrize(
    ("text", "lexicon", "args", "bound"),
    [
        ("reject the dogs with low confidence", ENGLISH, {"label": "dog", "status": "rejected"}, {"max_score": 0.5}),
        ("accept the dogs you are fairly sure about", ENGLISH, {"label": "dog", "status": "accepted"}, {"min_score": 0.7}),
        ("rechaza los perros con poca confianza", BOTH, {"label": "perro", "status": "rejected"}, {"max_score": 0.5}),
        ("acepta los perros de los que estás muy seguro", BOTH, {"label": "perro", "status": "accepted"}, {"min_score": 0.9}),
        ("reject the dogs", ENGLISH, {"label": "dog", "status": "rejected"}, {}),
        ("reject the dogs", ENGLISH, {"label": "dog", "status": "rejected", "max_score": 0.3}, {}),
    ],
)  # fmt: skip
def test_confidence_in_words_is_a_bound(text: str, lexicon, args: dict, bound: dict[str, float]) -> None:
    grounded = ground(STATUS, args, Request(text, frozenset({"dog", "perro"}), lexicon=lexicon))
    assert {k: v for k, v in grounded.args.items() if k.endswith("_score")} == bound


def test_words_with_accents_are_whole_words() -> None:
    """Held-out i18n case "es new class too": "también" was cut to "tambi" and taken for a class."""
    request = Request("Etiqueta también los perros", lexicon=BOTH)
    assert ground(args_of("auto_label"), {"classes": ["dog"]}, request).args == {"classes": ["perro"]}
    assert request.names_label("también") and not request.names_label("tambi")


@pytest.mark.parametrize(
    ("into", "expected"),
    [("accessorio", "accesorio"), ("accesorio", "accesorio"), ("vehicle", None)],
)
def test_a_misspelt_new_class_is_the_users_word(into: str, expected: str | None) -> None:
    """Held-out i18n case "es merge": the model wrote "accessorio" for the user's "accesorio"."""
    request = Request("Fusiona las clases cup y tie en accesorio.", frozenset({"cup", "tie"}), lexicon=BOTH)
    args = {"sources": ["cup", "tie"], "into": into}
    if expected is None:
        with pytest.raises(ToolError, match="did not name the class"):
            ground(args_of("merge_classes"), args, request)
    else:
        assert ground(args_of("merge_classes"), args, request).args["into"] == expected


@pytest.mark.parametrize(
    ("text", "english", "spanish"),
    [("Rename car to vehicle.", True, False), ("borra los coches", False, True), ("reject below 0.4", True, False),
     ("lösche alle Personen unter 0,5", False, False), ("supprime toutes les personnes", False, False),
     ("benenne Hund in Welpe um", False, False)],
)  # fmt: skip
def test_knows_tells_a_language_no_lexicon_covers(text: str, english: bool, spanish: bool) -> None:
    """ "in" is German too, so it tells no language apart; "to" and "los" do."""
    assert ENGLISH.knows(text) is english and SPANISH.knows(text) is spanish
