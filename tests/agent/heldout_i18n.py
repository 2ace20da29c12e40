# ruff: noqa: E501  (the case table reads best as one case per line)
"""The second held-out set (issue 15): 31 requests in English and Spanish, written fresh.

Written before any tuning on them, for the requests the first sets missed: a class the project
does not have yet, a reject below a number, a rename that must leave no empty class, scores in
words, multi-step requests and questions about one image, in two languages. Same seeded project
and judging as :mod:`tests.agent.devset` (the store's final state and the numbers in answers).
Seed (see ``SEED`` there): person 0.92 0.81 0.74a 0.22 (bus.jpg), 0.9a 0.86 (zidane.jpg), 0.51
(astronaut.png); bus 0.95a; car 0.61 0.33; tie 0.58; cup 0.41; cat 0.93, 0.15r. The Spanish
requests keep the project's class names where a user would type them (the classes are English).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import select

from store.categories import list_categories
from store.db import new_session
from tests.agent.devset import TOTAL, Case, World, _by, _c, both, says, state


def _classes(world: World) -> list[str]:
    with new_session(world.engine) as session:
        return [c.name for c in list_categories(session, project_id=world.project_id)]


def _has_class(*names: str) -> Callable[[World], bool]:
    return lambda w: any(n in _classes(w) for n in names)


def _no_class(name: str) -> Callable[[World], bool]:
    return lambda w: name not in _classes(w)


def _labeled_any(*labels: str, image: str | None = None) -> Callable[[World], bool]:
    """A labeling job for one of ``labels`` ran to the end over ``image`` (or every image)."""

    def check(w: World) -> bool:
        from store.models import Job

        with new_session(w.engine) as session:
            jobs = session.exec(select(Job).where(Job.kind == "auto_label")).all()
        wanted = [w.images[image]] if image is not None else sorted(w.images.values())
        return any(
            any(label in j.params["classes"] for label in labels)
            and sorted(j.params["image_ids"]) == wanted
            and j.state.value == "done"
            for j in jobs
        )

    return check


def _rejected_below(limit: float, label: str | None = None) -> Callable[[World], bool]:
    """Exactly the annotations (of ``label``) scoring below ``limit`` are rejected, and nothing
    was deleted."""

    def check(w: World) -> bool:
        rows = [r for r in w.rows() if label is None or r[1] == label]
        seeded_rejected = {("chelsea.png", "cat", 0.15)}
        return w.total() == TOTAL and all(
            (st == "rejected") == ((s or 1) < limit or (f, c, s) in seeded_rejected)
            for f, c, s, st, _ in rows
        )

    return check


def _renamed(old: str, new: str, n: int) -> Callable[[World], bool]:
    return lambda w: _c(new, n)(w) and _no_class(old)(w)


ENGLISH: list[Case] = [
    Case("en new class one image", ["Find the bicycle in bus.jpg and label it."], state(lambda w: _labeled_any("bicycle", image="bus.jpg")(w) and _has_class("bicycle")(w), "bicycle class added and labeled on bus.jpg"), "label"),
    Case("en new class too", ["Please also label any dogs."], state(lambda w: _labeled_any("dog")(w) and _has_class("dog")(w), "dog class added and labeled"), "label"),
    Case("en reject person below", ["Reject every person annotation below 0.8 confidence."], state(_rejected_below(0.8, "person"), "persons under 0.8 rejected"), "status"),
    Case("en reject below confirm", ["Reject all annotations under 0.6, please.", "yes"], state(_rejected_below(0.6), "everything under 0.6 rejected"), "status"),
    Case("en rename kitty", ["Call the cat class kitty from now on."], state(_renamed("cat", "kitty", 2), "cat->kitty, no cat class"), "rename"),
    Case("en rename automobile", ["Change the name of the class car to automobile."], state(_renamed("car", "automobile", 2), "car->automobile, no car class"), "rename"),
    Case("en count low confidence", ["How many annotations are low confidence?"], says(4), "count"),
    Case("en accept fairly sure", ["Accept the person boxes you are fairly sure about.", "yes"], state(_by("accepted", "person", 5), "3 more persons accepted"), "status"),
    Case("en label then count", ["Label the dogs, then tell me how many cat annotations there are."], both(state(_labeled_any("dog"), "dogs labeled"), says(2)), "multi"),
    Case("en cups in image", ["How many cups are in coffee.png?"], says(1), "count"),
    Case("en which tie", ["Which images contain a tie?"], says("zidane.jpg"), "find"),
    Case("en delete cats", ["Delete the cat annotations."], state(lambda w: _c("cat", 0)(w) and w.total() == TOTAL - 2, "cats deleted"), "delete"),
    Case("en reject bus", ["Mark the bus annotation as rejected."], state(_by("rejected", "bus", 1), "bus rejected"), "status"),
    Case("en less than half", ["How many annotations are less than half sure?"], says(4), "count"),
    Case("en merge cup tie", ["Merge the cup class into tie."], state(lambda w: _c("tie", 2)(w) and _c("cup", 0)(w), "cup into tie"), "merge"),
    Case("en what in image", ["What is annotated in zidane.jpg?"], says("person", "tie"), "count"),
]  # fmt: skip

SPANISH: list[Case] = [
    Case("es new class one image", ["Encuentra la bicicleta en bus.jpg y etiquétala."], state(lambda w: _labeled_any("bicicleta", "bicycle", image="bus.jpg")(w), "bicycle labeled on bus.jpg"), "label"),
    Case("es new class too", ["Etiqueta también los perros."], state(_labeled_any("perro", "perros", "dog"), "dogs labeled"), "label"),
    Case("es reject person below", ["Rechaza todas las anotaciones de person con confianza por debajo de 0.8."], state(_rejected_below(0.8, "person"), "persons under 0.8 rejected"), "status"),
    Case("es reject car low", ["Rechaza las anotaciones de car con poca confianza."], state(lambda w: _by("rejected", "car", 1)(w) and w.total() == TOTAL, "the 0.33 car rejected"), "status"),
    Case("es rename gato", ["Cambia el nombre de la clase cat a gato."], state(_renamed("cat", "gato", 2), "cat->gato, no cat class"), "rename"),
    Case("es rename taza", ["Renombra la clase cup como taza."], state(_renamed("cup", "taza", 1), "cup->taza, no cup class"), "rename"),
    Case("es count person", ["¿Cuántas anotaciones de person hay?"], says(7), "count"),
    Case("es count image", ["¿Cuántas anotaciones hay en zidane.jpg?"], says(3), "count"),
    Case("es find empty", ["¿Qué imágenes no tienen anotaciones?"], says("rocket.jpg"), "find"),
    Case("es delete tie", ["Borra las anotaciones de tie."], state(lambda w: _c("tie", 0)(w) and w.total() == TOTAL - 1, "tie deleted"), "delete"),
    Case("es accept cup", ["Acepta las anotaciones de cup."], state(_by("accepted", "cup", 1), "cup accepted"), "status"),
    Case("es count under half", ["¿Cuántas anotaciones tienen una puntuación menor que 0.5?"], says(4), "count"),
    Case("es delete persons confirm", ["Elimina todas las anotaciones de person.", "sí"], state(lambda w: _c("person", 0)(w) and w.total() == TOTAL - 7, "persons deleted after sí"), "delete"),
    Case("es merge", ["Fusiona las clases cup y tie en accesorio."], state(lambda w: _c("accesorio", 2)(w) and _c("cup", 0)(w), "into accesorio"), "merge"),
    Case("es label then count", ["Etiqueta los gatos y luego dime cuántas anotaciones de car hay."], both(state(_labeled_any("gato", "gatos", "cat"), "cats labeled"), says(2)), "multi"),
]  # fmt: skip

CASES: dict[str, list[Case]] = {"en": ENGLISH, "es": SPANISH}
