"""The agent's NamedTuple base (fwcfg_agent/tuples.py) makes the classes typing.NamedTuple makes,
as far as anything can tell at run time, without compiling anything."""

from __future__ import annotations

import pickle
import typing
from pathlib import Path
from typing import Any, Optional

import pytest

from fwcfg_agent import tuples

from .conftest import REPO


class Cheap(tuples.NamedTuple):
    """A route."""

    to: str
    via: Optional[str] = None
    metric: int = 0

    @property
    def label(self) -> str:
        return f"{self.to} via {self.via}"

    def bumped(self) -> Cheap:
        return self._replace(metric=self.metric + 1)


class Typed(typing.NamedTuple):
    """A route."""

    to: str
    via: Optional[str] = None
    metric: int = 0

    @property
    def label(self) -> str:
        return f"{self.to} via {self.via}"

    def bumped(self) -> Typed:
        return self._replace(metric=self.metric + 1)


CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    (("a",), {}), (("a", "b"), {}), (("a", "b", 3), {}), ((), {"to": "a"}),
    (("a",), {"metric": 5}), ((), {"metric": 5, "to": "a", "via": "c"}),
]


@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_the_same_values_repr_and_methods(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    cheap, typed = Cheap(*args, **kwargs), Typed(*args, **kwargs)
    assert cheap == typed and tuple(cheap) == tuple(typed) and hash(cheap) == hash(typed)
    assert repr(cheap).replace("Cheap", "Typed") == repr(typed)
    assert cheap._asdict() == typed._asdict()
    assert cheap.label == typed.label and cheap.bumped() == typed.bumped()
    assert type(cheap.bumped()) is Cheap
    assert (cheap.to, cheap.via, cheap.metric) == (typed.to, typed.via, typed.metric)
    assert cheap._replace(via="x") == typed._replace(via="x")
    assert pickle.loads(pickle.dumps(cheap)) == cheap
    assert type(pickle.loads(pickle.dumps(cheap))) is Cheap


def test_the_same_class_attributes() -> None:
    assert Cheap._fields == Typed._fields == ("to", "via", "metric")
    assert Cheap._field_defaults == Typed._field_defaults == {"via": None, "metric": 0}
    assert vars(Cheap)["__match_args__"] == Cheap._fields  # typing sets it from Python 3.10
    assert Cheap.__bases__ == Typed.__bases__ == (tuple,)
    assert Cheap.__doc__ == Typed.__doc__ == "A route."
    assert Cheap.__module__ == __name__ and Cheap.__qualname__ == "Cheap"
    assert Cheap._make(["a", "b", 1]) == Typed._make(["a", "b", 1])
    assert not hasattr(Cheap("a"), "__dict__")
    with pytest.raises(AttributeError):
        Cheap("a").to = "b"  # type: ignore[misc]


@pytest.mark.parametrize(("args", "kwargs"), [
    ((), {}), (("a", "b", 1, 2), {}), (("a",), {"bogus": 1}), (("a",), {"to": "b"}),
])
def test_the_same_errors(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        Typed(*args, **kwargs)
    with pytest.raises(TypeError):
        Cheap(*args, **kwargs)
    with pytest.raises(ValueError, match="unexpected field names"):
        Cheap("a")._replace(bogus=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Cheap._make(["a"])


def test_every_agent_module_uses_the_cheap_base() -> None:
    """One NamedTuple for the package: typing's is only for mypy (tuples.py)."""
    offenders = [str(p.relative_to(REPO)) for p in sorted((REPO / "fwcfg_agent").rglob("*.py"))
                 if p.name != "tuples.py" and _imports_typing_namedtuple(p)]
    assert offenders == []


def _imports_typing_namedtuple(path: Path) -> bool:
    for line in path.read_text().splitlines():
        if line.startswith("from typing import") and "NamedTuple" in line.split(" import ")[1]:
            return True
    return "typing.NamedTuple" in path.read_text()
