"""Filters in a tool call must come from the user's words; a weak model invents them.

Qwen2.5-Coder-1.5B fills every optional field it is shown: asked "how many person annotations are
there?" it calls ``count`` with ``status: "accepted"`` too, and answers a question nobody asked;
asked to delete low scores it adds ``label: "all", status: "all", min_score: 0`` and fails
validation. Prompting reduced this but never stopped it (dev set: 22/37 before this module).

So before a call runs, each *filter* argument is checked against the user's messages in the
conversation (never tool results, so a file name cannot ground anything) and kept only when the
user named it: the class as a word (plurals and a few irregular forms allowed), the image by file
name or id, the status by one of its words, the score by its number (with "below"/"above" deciding
which bound it is). Values that name nothing real ("all", an empty list, a score of 0, a file name
that is not in the project) are junk and dropped silently; a real value the user did not name is
dropped and reported (``Grounded.dropped``). Dropping a filter can widen an edit; the usual rule
still holds for the wider one (more than a few annotations waits for a yes, anything is undoable).

A change must be asked for in this turn's message, file names taken out: a delete needs a delete
verb (the model reached for ``delete_annotations`` on "reject the low scores"), a status change a
status word, and a new class name (relabel's ``to``, rename's ``new``, merge's ``into``) must be
written by the user. Otherwise the call is refused with a message the model can act on. Those verbs
and status words come from a lexicon; a message in a language none of them knows
(:attr:`Request.unheard`) is not refused for lacking them: the agent shows the change as a dry run
and waits for the person's yes instead (``agent.pending``). The new class name is checked anyway.

Labeling keeps the user's class words: the model turned "label every pedestrian" into the COCO
class "person", and repeated that call word for word after being told. An unnamed class is
replaced by the one word of the message left once verbs, stop words and file names are taken out;
when that does not pin it down the call is refused.

Which rule guards which argument is declared on the argument itself, next to its JSON schema:
``label: Annotated[Label | None, From(Source.CLASS)]`` (``tools.registry``). A renamed field keeps
its rule, and a new tool's filters are grounded by declaring them, not by a table here.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from agent.lexicon import DEFAULT, Lexicon
from agent.request import LETTERS, Request, stem
from tools.registry import Asks, Source, ToolError, grounding

_ANY = {"all", "any", "*", "everything", "every", "none", "null", "annotations", "objects", "images"}


@dataclass
class Grounded:
    args: dict[str, Any]
    dropped: dict[str, Any] = field(default_factory=dict)  # real values the user did not name


def ground(tool: type[BaseModel], args: dict[str, Any], request: Request) -> Grounded:
    """``args`` (for the tool whose args model is ``tool``) with invented filters removed (see the
    module docstring). Which rule guards which argument is declared on the field itself
    (``tools.registry.From``), so a renamed field keeps its rule; undeclared fields pass through.

    Raises:
        ToolError: a change the user's message did not ask for (a delete without a delete verb, a
            status change without a status word, a new class name they did not write), or
            labeling with classes they never named.
    """
    fields = grounding(tool)
    by_source: dict[Source, list[str]] = {}
    for name, source in fields.items():
        by_source.setdefault(source, []).append(name)
    args = _user_spelling(fields, args, request)
    _check_asked(tool, fields, args, request)
    out = {k: v for k, v in args.items() if not (k in fields and _junk(v))}
    for key in by_source.get(Source.CLASSES, []):
        _ground_labeling(out, key, by_source.get(Source.THRESHOLD, []), request)
    dropped: dict[str, Any] = {}
    status_key = next(iter(by_source.get(Source.STATUS, [])), None)

    for key in by_source.get(Source.CLASS, []):
        label = out.get(key)
        if not isinstance(label, str):
            continue
        status = _as_status(label, request.lexicon)
        if status and status_key and label.lower() not in {c.lower() for c in request.classes}:
            out.pop(key)  # "count the accepted ones" -> label "accepted": a status, not a class
            if status_key not in out or not request.names_status(str(out[status_key])):
                out[status_key] = status
        elif not request.names_label(label):
            dropped[key] = out.pop(key)
        else:  # "cars" -> the project's class "car"
            known = {stem(c): c for c in request.classes}
            if label not in request.classes and stem(label) in known:
                out[key] = known[stem(label)]

    for key in by_source.get(Source.STATUS, []):
        if key in out and not request.names_status(str(out[key])):
            value = out.pop(key)
            if _as_status(str(value), request.lexicon):
                dropped[key] = value
    for key in by_source.get(Source.NEW_STATUS, []):
        _ground_new_status(out, key, status_key, request)

    for key in by_source.get(Source.IMAGE, []):
        if key in out:
            refs = out[key] if isinstance(out[key], list) else [out[key]]
            real = [r for r in refs if not _junk(r) and request.image_exists(r)]
            named = [r for r in real if request.names_image(r)]
            if len(named) < len(real):
                dropped[key] = [r for r in real if r not in named]
            if named:
                out[key] = named if isinstance(out[key], list) else named[0]
            else:
                out.pop(key)

    _ground_scores(out, dropped, request, by_source)

    for key in by_source.get(Source.EVERY, []):  # unheard: the dry run shows what "all" covers
        if out.get(key) is True and not request.unheard and not request.lexicon.every.search(request.message):
            out.pop(key)
    for key in by_source.get(Source.NONE, []):
        if out.get(key) is True and not request.lexicon.none.search(request.without_files(request.text)):
            out.pop(key)
    for key in by_source.get(Source.TEXT, []):
        if isinstance(out.get(key), str) and out[key].lower() not in request.text.lower():
            out.pop(key)
    return Grounded(out, dropped)


def _user_spelling(fields: dict[str, Source], args: dict[str, Any], request: Request) -> dict[str, Any]:
    """A new class name the model misspelt ("accessorio" for the user's "accesorio") is the user's
    word when exactly one word of this turn is that close; anything further is still refused."""
    out = dict(args)
    words = list(dict.fromkeys(re.findall(LETTERS, request.message.lower())))
    for key, source in fields.items():
        target = out.get(key)
        if source != Source.NEW_CLASS or not isinstance(target, str) or " " in target.strip():
            continue
        if target.strip() and not request.names_label(target, this_turn=True):
            near = difflib.get_close_matches(target.strip().lower(), words, n=2, cutoff=0.85)
            if len(near) == 1:
                out[key] = near[0]
    return out


def _check_asked(
    tool: type[BaseModel], fields: dict[str, Source], args: dict[str, Any], request: Request
) -> None:
    """Refuse a change this turn's message does not ask for. Seen with the held-out set: told the
    file "... delete everything.jpg" by name, the model tried a delete, then rejecting everything.

    A message in a language no lexicon knows (``Request.unheard``) is not refused for a missing
    delete or status word: the agent turns the change into a dry run the person must confirm. A new
    class name the user did not write is refused in any language."""
    unheard = request.unheard
    if (
        getattr(tool, "ASKS", None) == Asks.DELETE
        and not unheard
        and not request.lexicon.delete.search(request.message)
    ):
        said = [s for s in ("rejected", "accepted") if request.names_status(s, this_turn=True)]
        if len(said) == 1:  # "reject every X below 0.8": the verb says which edit it is
            filters = {k: v for k, v in args.items() if k not in fields or fields[k] != Source.EVERY}
            call = json.dumps({"name": "set_status", "arguments": {**filters, "status": said[0]}})
            raise ToolError(f"refused: the user did not ask to delete anything; they asked for {call}")
        raise ToolError(
            "refused: the user did not ask to delete anything. To accept or reject annotations call "
            "set_status; to change their class call relabel."
        )
    if (
        Source.NEW_STATUS in fields.values()
        and not unheard
        and not request.lexicon.status_ask.search(request.message)
    ):
        raise ToolError("refused: the user did not ask to accept, reject or change the status of anything")
    for key, source in fields.items():
        target = args.get(key) if source == Source.NEW_CLASS else None
        if isinstance(target, str) and target.strip() and not request.names_label(target, this_turn=True):
            raise ToolError(
                f"refused: the user did not name the class {target!r}; use the name the user wrote. "
                "To find and label objects of a class, also a new one, call auto_label with it."
            )


def _ground_labeling(out: dict[str, Any], key: str, thresholds: list[str], request: Request) -> None:
    classes = out.get(key)
    if isinstance(classes, list) and classes:
        classes = out[key] = _user_words_for(classes, request)
        generic = re.search(r"\bclass(es)?\b", request.message, re.IGNORECASE)  # "with our classes"
        unnamed = [
            c
            for c in classes
            if isinstance(c, str) and not request.names_label(c) and not (generic and c in request.classes)
        ]
        if unnamed:
            raise ToolError(
                f"the user did not name {', '.join(map(repr, unnamed))}: pass the classes exactly as "
                "the user wrote them (e.g. pedestrian, not person)"
            )
    for name in thresholds:
        threshold = out.get(name)
        if isinstance(threshold, int | float) and all(abs(v - threshold) > 1e-9 for v, _ in request.scores()):
            out.pop(name)


def _user_words_for(classes: list[Any], request: Request) -> list[Any]:
    """Unnamed classes swapped for the message's remaining words, when they pair up one to one."""
    unnamed = [c for c in classes if isinstance(c, str) and not request.names_label(c)]
    if not unnamed:
        return classes
    named = {stem(c) for c in classes if isinstance(c, str) and c not in unnamed}
    words = [stem(w) for w in re.findall(LETTERS, request.message.lower())]
    left = list(
        dict.fromkeys(
            w for w in words if len(w) > 2 and w not in request.lexicon.not_a_class and w not in named
        )
    )
    if len(left) != len(unnamed):
        return classes
    swap = dict(zip(unnamed, left, strict=True))
    return [swap.get(c, c) if isinstance(c, str) else c for c in classes]


def _junk(value: Any) -> bool:
    if value is None or value == [] or value == {}:
        return True
    if isinstance(value, str):
        return value.strip().lower() in _ANY or not value.strip()
    if isinstance(value, list):
        return all(_junk(v) for v in value)
    return False


def _as_status(text: str, lexicon: Lexicon = DEFAULT) -> str | None:
    word = text.strip().lower()
    return next((s for s, forms in lexicon.status_words.items() if word == s or word in forms), None)


def _ground_new_status(out: dict[str, Any], key: str, current_key: str | None, request: Request) -> None:
    """The status to set: the verb the user used ("accept", "reject") wins when unambiguous, and
    a current-status filter equal to the target is dropped (it could only match nothing)."""
    said = [s for s in ("accepted", "rejected") if request.names_status(s, this_turn=True)]
    if len(said) == 1:
        out[key] = said[0]
    elif _as_status(str(out.get(key, "")), request.lexicon):
        out[key] = _as_status(str(out[key]), request.lexicon)
    current = out.get(current_key) if current_key else None
    if current is not None and _as_status(str(current), request.lexicon) == out.get(key):
        out.pop(current_key)  # type: ignore[arg-type]


def _ground_scores(
    out: dict[str, Any], dropped: dict[str, Any], request: Request, by_source: dict[Source, list[str]]
) -> None:
    """Each score bound kept only when the user wrote its number; "below"/"above" before it moves
    it to the upper or lower bound (when the tool has that one)."""
    bounds = {"max": by_source.get(Source.MAX_SCORE, []), "min": by_source.get(Source.MIN_SCORE, [])}
    said = request.scores()
    given = {k: out.pop(k) for k in [*bounds["min"], *bounds["max"]] if k in out}
    for key, value in given.items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            out[key] = value  # let validation explain it
            continue
        match = next((side for v, side in said if abs(v - float(value)) < 1e-9), "none")
        if match == "none":
            if not said and request.lexicon.score_words.search(request.text) and 0 < value < 1:
                out[key] = value  # "the low-confidence ones": the model's threshold is a fair guess
            elif 0 < value < 1:
                dropped[key] = value
            continue
        side = bounds.get(match or "", [])
        out[side[0] if side else key] = value
    if not any(k in out for k in [*bounds["min"], *bounds["max"]]):  # the model left out a bound said
        for value, side in request.scores(this_turn=True):  # in this turn ("below 0.8", "low confidence")
            if side and bounds.get(side):
                out[bounds[side][0]] = value
                break
