"""The words the agent's rules listen for, per language, in one injectable object.

The grounding rules (:mod:`agent.grounding`) and the confirmation rule (:mod:`agent.pending`) read
the user's own words: a plain "yes", a delete verb, a status word, "below 0.5". Those words used to
be English lists scattered over the modules, so a request in Spanish was refused and "sí" never
confirmed anything. A :class:`Lexicon` holds them all; :data:`ENGLISH` is the default, and
:data:`SPANISH` ships too. :func:`merge` makes one that understands several languages (a match in
any of them counts), which is what a server with people of more than one language wants.

Each pattern is used the way its field says (``search`` anywhere in the message, or ``match`` of
the whole message for ``yes``); a merged pattern is the alternation of the originals, so each keeps
its own anchors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_I = re.IGNORECASE
# function words shared with languages no lexicon covers: they tell no language apart
_SHARED = frozenset("a al an also de e el en es i in la le lo me mi o se si so su tu un una y".split())


@dataclass(frozen=True)
class Lexicon:
    name: str
    yes: re.Pattern[str]  # the whole message is a plain confirmation
    delete: re.Pattern[str]  # a delete verb anywhere
    status_ask: re.Pattern[str]  # asks to accept, reject or change a status
    status_words: dict[str, tuple[str, ...]]  # status -> the words that name it
    below: re.Pattern[str]  # a comparator right before a number: it is an upper bound
    above: re.Pattern[str]  # ... a lower bound
    every: re.Pattern[str]  # "all", "every"
    none: re.Pattern[str]  # "without", "unlabelled"
    score_words: re.Pattern[str]  # the message talks about confidence
    not_a_class: frozenset[str]  # words that never name a class (verbs, stop words)
    number_words: dict[str, float] = field(default_factory=dict)  # scores said in words ("half")
    # confidence said in words -> (bound, value): "low confidence" is a score of at most 0.5
    score_phrases: dict[str, tuple[str, float]] = field(default_factory=dict)
    then: re.Pattern[str] = re.compile(r"(?!)")  # "..., then ...": one more step after this one

    def knows(self, text: str) -> bool:
        """True when ``text`` holds any word the rules listen for, or a word of ``not_a_class`` (its
        plural too) other than the few that are words of many languages ("in", "de", "a": German,
        French and Portuguese have them too).

        A message no shipped lexicon knows is in a language the rules cannot read: a change it asks
        for is shown as a dry run instead of being refused for a missing word (``agent.grounding``).
        """
        lower = text.lower()
        words = {w for w in re.findall(r"[^\W\d_]+", lower) if w not in _SHARED}
        words |= {w[:-1] for w in words if w.endswith("s")}
        if words & self.not_a_class or any(words & set(forms) for forms in self.status_words.values()):
            return True
        patterns = (self.delete, self.status_ask, self.every, self.none, self.score_words, self.then)
        if self.yes.match(text) or any(p.search(text) for p in patterns):
            return True
        phrases = [*self.number_words, *self.score_phrases]
        if any(re.search(rf"(?<!\w){re.escape(p)}(?!\w)", lower) for p in phrases):
            return True
        return any(  # a comparator right before a number ("below 0.5")
            self.below.search(lower[: m.start()]) or self.above.search(lower[: m.start()])
            for m in re.finditer(r"\d", lower)
        )


ENGLISH = Lexicon(
    name="en",
    yes=re.compile(
        r"^\s*(y|yes|yep|yeah|ok|okay|sure|confirm(ed)?|apply( it)?|do it|go ahead|proceed)"
        r"([\s,.!]+(please|thanks|thank you|do it|apply it|go ahead))*[\s.!]*$",
        _I,
    ),
    delete=re.compile(
        r"\b(delete\w*|remov\w*|eras\w*|clear\w*|drop\w*|discard\w*|wipe\w*|purge\w*|trash\w*|"
        r"eliminat\w*|get rid)\b",
        _I,
    ),
    status_ask=re.compile(
        r"\b(accept\w*|approv\w*|reject\w*|status\w*|propos\w*|unreview\w*|pending|mark\w*|review\w*)", _I
    ),
    status_words={
        "accepted": ("accept", "accepted", "approve", "approved"),
        "rejected": ("reject", "rejected"),
        "proposed": ("proposed", "proposal", "proposals", "pending", "unreviewed"),
    },
    below=re.compile(r"(below|under|less than|lower than|at most|smaller than|<=?|up to|beneath)\s*$"),
    above=re.compile(r"(above|over|more than|greater than|higher than|at least|>=?|from)\s*$"),
    every=re.compile(r"\b(all|every|everything|entire|whole)\b", _I),
    none=re.compile(r"\b(no|not|without|unlabell?ed|unannotated|missing|empty|lack\w*|none|nothing)\b", _I),
    score_words=re.compile(r"confiden|score|certain|sure|low|high|weak|strong", _I),
    not_a_class=frozenset(
        """a all also an and annotate annotation any are as at auto automatically be bounding box boxes
        can class classe could detect do draw each every everything find for from identify image in into is
        it its just label labeling labelling locate mark mask me merge more my new now object of on only
        other our outline photo picture please polygon project rename rest segment some split that the them
        then these thing this those to unlabeled unlabelled visible what where which with would you""".split()
    ),
    number_words={"half": 0.5, "a quarter": 0.25, "three quarters": 0.75},
    score_phrases={
        "low confidence": ("max", 0.5),
        "low-confidence": ("max", 0.5),
        "low score": ("max", 0.5),
        "low scores": ("max", 0.5),
        "low-scoring": ("max", 0.5),
        "unsure": ("max", 0.5),
        "not sure": ("max", 0.5),
        "uncertain": ("max", 0.5),
        "fairly sure": ("min", 0.7),
        "fairly confident": ("min", 0.7),
        "quite sure": ("min", 0.7),
        "high confidence": ("min", 0.8),
        "high-confidence": ("min", 0.8),
        "very sure": ("min", 0.9),
        "very confident": ("min", 0.9),
    },  # fmt: skip
    then=re.compile(r"\b(then|after that|afterwards|and also)\b", _I),
)

SPANISH = Lexicon(
    name="es",
    yes=re.compile(
        r"^\s*¡?\s*(s[ií]|vale|ok|okay|claro|de acuerdo|confirm[oa]|confirmado|adelante|hazlo|"
        r"apl[ií]ca(lo)?|procede)([\s,.!]+(por favor|gracias|hazlo|apl[ií]calo|adelante|s[ií]))*[\s.!]*$",
        _I,
    ),
    delete=re.compile(r"\b(borr\w*|elimin\w*|quit\w*|suprim\w*|descart\w*)\b", _I),
    status_ask=re.compile(
        r"\b(acept\w*|aprueb\w*|aprob\w*|rechaz\w*|estado\w*|propuest\w*|pendiente\w*|marc\w*|revis\w*)", _I
    ),
    status_words={
        "accepted": (
            "acepta",
            "aceptar",
            "aceptada",
            "aceptadas",
            "aceptado",
            "aceptados",
            "aprueba",
            "aprobar",
            "aprobada",
            "aprobadas",
            "aprobado",
            "aprobados",
        ),
        "rejected": ("rechaza", "rechazar", "rechazada", "rechazadas", "rechazado", "rechazados"),
        "proposed": ("propuesta", "propuestas", "propuesto", "propuestos", "pendiente", "pendientes"),
    },  # fmt: skip
    below=re.compile(
        r"(por debajo de|menos de|menor(es)? (que|de)|bajo|inferior(es)? a|como mucho|"
        r"como m[aá]ximo|hasta)\s*$",
        _I,
    ),
    above=re.compile(
        r"(por encima de|m[aá]s de|mayor(es)? (que|de)|sobre|superior(es)? a|al menos|"
        r"como m[ií]nimo|desde)\s*$",
        _I,
    ),
    every=re.compile(r"\b(tod[oa]s?|cada|enter[oa]s?|complet[oa]s?)\b", _I),
    none=re.compile(r"\b(no|sin|ningun[oa]?|ningún|vac[ií][ao]s?|nada|faltan?)\b", _I),
    score_words=re.compile(r"confian|puntuaci|seguridad|segur[oa]|baj[oa]|alt[oa]|d[eé]bil|fuerte", _I),
    not_a_class=frozenset(
        """a al algo algun alguna algunas algunos ante caja cajas cada clase clases como con cual cuales
        cuantas cuantos cuántas cuántos de del desde detecta detectar dibuja el en encuentra entre es esta
        estas este esto estos etiqueta etiquetas etiquetar foto haz imagen imagenes la las lo los marca mas
        me mi mis muestra muestrame nueva nuevas nuevo nuevos o objeto objetos otra otras otro otros para
        pero por que quiero se segmenta si sin sobre solo su sus tambien también todas todos tu un una unas
        uno unos y ya""".split()
    ),
    number_words={"la mitad": 0.5, "mitad": 0.5, "un cuarto": 0.25, "tres cuartos": 0.75},
    score_phrases={
        "poca confianza": ("max", 0.5),
        "baja confianza": ("max", 0.5),
        "confianza baja": ("max", 0.5),
        "puntuación baja": ("max", 0.5),
        "dudosas": ("max", 0.5),
        "dudosos": ("max", 0.5),
        "bastante seguro": ("min", 0.7),
        "bastante segura": ("min", 0.7),
        "alta confianza": ("min", 0.8),
        "confianza alta": ("min", 0.8),
        "muy seguro": ("min", 0.9),
        "muy segura": ("min", 0.9),
    },  # fmt: skip
    then=re.compile(r"\b(luego|despu[eé]s|y entonces|a continuaci[oó]n)\b", _I),
)

LANGUAGES = {lexicon.name: lexicon for lexicon in (ENGLISH, SPANISH)}
DEFAULT = ENGLISH


def _either(patterns: list[re.Pattern[str]]) -> re.Pattern[str]:
    flags = 0
    for p in patterns:
        flags |= p.flags & _I
    return re.compile("|".join(f"(?:{p.pattern})" for p in patterns), flags)


def merge(*lexicons: Lexicon) -> Lexicon:
    """One lexicon that understands every one given (a match in any language counts)."""
    if not lexicons:
        raise ValueError("merge needs at least one lexicon, got none")
    if len(lexicons) == 1:
        return lexicons[0]
    statuses = {s for lex in lexicons for s in lex.status_words}
    return Lexicon(
        name="+".join(lex.name for lex in lexicons),
        yes=_either([lex.yes for lex in lexicons]),
        delete=_either([lex.delete for lex in lexicons]),
        status_ask=_either([lex.status_ask for lex in lexicons]),
        status_words={
            s: tuple(dict.fromkeys(w for lex in lexicons for w in lex.status_words.get(s, ())))
            for s in statuses
        },
        below=_either([lex.below for lex in lexicons]),
        above=_either([lex.above for lex in lexicons]),
        every=_either([lex.every for lex in lexicons]),
        none=_either([lex.none for lex in lexicons]),
        score_words=_either([lex.score_words for lex in lexicons]),
        not_a_class=frozenset().union(*(lex.not_a_class for lex in lexicons)),
        number_words={k: v for lex in lexicons for k, v in lex.number_words.items()},
        score_phrases={k: v for lex in lexicons for k, v in lex.score_phrases.items()},
        then=_either([lex.then for lex in lexicons]),
    )


def languages(names: str) -> Lexicon:
    """The lexicon for a list like ``"en"`` or ``"en,es"``; ValueError names the known ones."""
    wanted = [n.strip().lower() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in LANGUAGES]
    if unknown or not wanted:
        raise ValueError(f"languages must be some of {sorted(LANGUAGES)}, comma-separated; got {names!r}")
    return merge(*(LANGUAGES[n] for n in wanted))


SHIPPED = merge(*LANGUAGES.values())  # every language shipped: what "no lexicon knows it" is checked against
