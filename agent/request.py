"""What the user said, read the way the grounding rules need it (:mod:`agent.grounding`).

Only the person's own messages go in (never tool results, so a file name a tool printed cannot
ground anything); the project's classes and file names come with them, so "bus.jpg" is read as a
file and not as the class bus. The words are stemmed crudely (an English plural, a plain plural of
other languages) because the rules only ever ask "did they name this?", never "what did they mean?".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.lexicon import DEFAULT, SHIPPED, Lexicon

_IRREGULAR = {
    "people": "person",
    "persons": "person",
    "men": "man",
    "women": "woman",
    "children": "child",
    "mice": "mouse",
    "geese": "goose",
    "feet": "foot",
    "teeth": "tooth",
}
_WORD = re.compile(r"[^\W_]+")  # letters and digits of any language: "también" is one word, not "tambi"
LETTERS = re.compile(r"[^\W\d_]+")
_FILE = re.compile(r"\S+\.(?:jpe?g|png|webp|bmp|tiff?|gif|heic)\b", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])(\d*\.\d+|\d+)(\s*%)?")
_COMMA_DECIMAL = re.compile(r"(?<![\w.,])0,(\d+)(?![\d,])")  # "unter 0,5": a score, never an image list


def stem(word: str) -> str:
    """A crude singular: enough to match "cars" to car and "buses" to bus, not a lemmatizer."""
    word = word.lower()
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if re.search(r"(s|x|z|ch|sh)es$", word):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _same_word(said: str, label: str, unheard: bool = False) -> bool:
    """One word of the user's naming one word of a class: the same stem, or a plain plural of it
    ("coches" for coche, which the English stem would cut to "coch"; in a language no lexicon
    knows, also "-en", "-n", "-e": "Personen" for person)."""
    endings = ("s", "es", "en", "n", "e") if unheard else ("s", "es")
    return stem(said) == stem(label) or said in tuple(label + e for e in endings)


@dataclass(frozen=True)
class Request:
    """What the user said (their messages only) and what exists in the project."""

    text: str  # every user message in the conversation window, this one last
    classes: frozenset[str] = frozenset()
    image_exists: Callable[[str | int], bool] = field(default=lambda ref: True)
    current: str | None = None  # this turn's message (the verbs that decide an edit); text if None
    file_names: tuple[str, ...] = ()  # project file names the text mentions (they may hold spaces)
    lexicon: Lexicon = DEFAULT  # the words the rules listen for (agent.lexicon)

    @property
    def message(self) -> str:
        """This turn's words outside file names ("... delete everything.jpg" asks for nothing)."""
        return self.without_files(self.text if self.current is None else self.current)

    @property
    def unheard(self) -> bool:
        """This turn's message holds no word this request's lexicon or any shipped one knows
        (``Lexicon.knows``): a language the rules cannot read. A change it asks for is then not
        refused for a missing delete or status word; the agent shows it as a dry run and waits for
        the person's yes (``agent.pending``), whatever its size."""
        message = self.message
        return bool(message.strip()) and not (self.lexicon.knows(message) or SHIPPED.knows(message))

    def without_files(self, text: str) -> str:
        for name in sorted(self.file_names, key=len, reverse=True):
            text = re.sub(re.escape(name), " ", text, flags=re.IGNORECASE)
        return _FILE.sub(" ", text)

    def words(self, this_turn: bool = False) -> list[str]:
        """Stemmed words outside file names ("bus.jpg" does not name the class bus)."""
        text = self.message if this_turn else self.without_files(self.text)
        return [stem(w) for w in re.findall(_WORD, text.lower())]

    def names_label(self, label: str, this_turn: bool = False) -> bool:
        wanted = re.findall(_WORD, label.lower())
        text = self.message if this_turn else self.without_files(self.text)
        words = re.findall(_WORD, text.lower())
        n, unheard = len(wanted), self.unheard
        return bool(n) and any(
            all(_same_word(w, x, unheard) for w, x in zip(words[i : i + n], wanted, strict=True))
            for i in range(len(words) - n + 1)
        )

    def names_image(self, ref: str | int) -> bool:
        ref_text = str(ref).strip().lower()
        if ref_text.isdigit():
            return any(m.group(1) == ref_text for m in _NUMBER.finditer(self.text))
        return bool(ref_text) and ref_text in self.text.lower()

    def names_status(self, status: str, this_turn: bool = False) -> bool:
        text = self.message if this_turn else self.without_files(self.text)
        words = set(re.findall(LETTERS, text.lower()))
        return any(w in words for w in self.lexicon.status_words.get(status, ()))

    def scores(self, this_turn: bool = False) -> list[tuple[float, str | None]]:
        """Numbers the user wrote as scores (digits, or the lexicon's words such as "half"), each with
        "max"/"min" when a comparator precedes it, then confidence said in words ("low confidence"
        is at most 0.5, "fairly sure" at least 0.7: the lexicon's ``score_phrases``)."""
        text = self.message if this_turn else self.text
        out: list[tuple[float, str | None]] = []
        for m in _NUMBER.finditer(text):
            value = float(m.group(1)) / (100 if m.group(2) else 1)
            if not 0 <= value <= 1:
                continue
            out.append((value, self._side(text, m.start())))
        for m in _COMMA_DECIMAL.finditer(text):
            out.append((float("0." + m.group(1)), self._side(text, m.start())))
        for words, value in self.lexicon.number_words.items():  # "less than half sure"
            for m in re.finditer(rf"\b{re.escape(words)}\b", text, re.IGNORECASE):
                out.append((value, self._side(text, m.start())))
        for words, (side, value) in self.lexicon.score_phrases.items():
            if re.search(rf"(?<!\w){re.escape(words)}(?!\w)", text, re.IGNORECASE):
                out.append((value, side))
        return out

    def _side(self, text: str, at: int) -> str | None:
        """ "max" when a "below" comparator ends right before position ``at``, "min" for "above"."""
        before = text[:at].lower()
        return (
            "max"
            if self.lexicon.below.search(before)
            else "min"
            if self.lexicon.above.search(before)
            else None
        )
