"""`NamedTuple` for the agent's typed records: `typing.NamedTuple` to mypy, and at run time a
cheaper maker of the same classes.

`class Route(NamedTuple)` with typing's base costs about 0.75M instructions on Python 3.11: with
`from __future__ import annotations` typing compiles every field's annotation into a ForwardRef,
and collections.namedtuple compiles a `__new__` from source. A first boot defines some forty of
these classes, about 30M instructions (a bare interpreter's start-up). This base makes the same
class (a tuple subclass with `_fields`, `_field_defaults`, `_replace`, `_asdict`, `_make`, the
namedtuple `repr`, pickling, `__match_args__`, and the class body's methods and properties) with
nothing compiled. The annotations are kept as written (strings), untouched: nothing in the agent
evaluates them at run time.

Use it as typing's: `from .tuples import NamedTuple`, then `class Name(NamedTuple):` with
annotated fields, defaults last.
"""

from __future__ import annotations

TYPE_CHECKING = False  # mypy reads typing's NamedTuple; Python runs the maker below
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    from _collections import _tuplegetter

    _tuple_new = tuple.__new__
    _NOT_COPIED = frozenset({"__annotations__", "__orig_bases__", "__slots__"})

    def _make_class(typename, namespace):
        annotations = namespace.get("__annotations__", {})
        fields = tuple(annotations)
        defaults = {f: namespace[f] for f in fields if f in namespace}
        count = len(fields)

        def __new__(cls, *args, **kwargs):
            if kwargs or len(args) != count:
                if len(args) > count:
                    raise TypeError(f"{typename}() takes {count} positional arguments but "
                                    f"{len(args)} were given")
                values = list(args)
                for f in fields[len(args):]:
                    if f in kwargs:
                        values.append(kwargs.pop(f))
                    elif f in defaults:
                        values.append(defaults[f])
                    else:
                        raise TypeError(f"{typename}() missing required argument: {f!r}")
                if kwargs:
                    raise TypeError(f"{typename}() got an unexpected keyword argument "
                                    f"{next(iter(kwargs))!r}")
                args = values
            return _tuple_new(cls, args)

        def _make(cls, iterable):
            result = _tuple_new(cls, iterable)
            if len(result) != count:
                raise TypeError(f"Expected {count} arguments, got {len(result)}")
            return result

        def _replace(self, /, **kwargs):
            result = _tuple_new(type(self), [kwargs.pop(f, v) for f, v in zip(fields, self)])
            if kwargs:
                raise ValueError(f"Got unexpected field names: {list(kwargs)!r}")
            return result

        def _asdict(self):
            return dict(zip(fields, self))

        def __repr__(self):
            return f"{type(self).__name__}(" + ", ".join(
                f"{f}={v!r}" for f, v in zip(fields, self)) + ")"

        def __getnewargs__(self):
            return tuple(self)

        body = {k: v for k, v in namespace.items() if k not in _NOT_COPIED and k not in defaults}
        body.update(__slots__=(), __annotations__=annotations, _fields=fields,
                    _field_defaults=defaults, __match_args__=fields, __new__=__new__,
                    _make=classmethod(_make), _replace=_replace, _asdict=_asdict,
                    __repr__=__repr__, __getnewargs__=__getnewargs__)
        body.setdefault("__doc__", f"{typename}({', '.join(fields)})")
        for i, f in enumerate(fields):
            body[f] = _tuplegetter(i, f"Alias for field number {i}")
        return type(typename, (tuple,), body)

    class _Maker(type):
        def __new__(mcls, typename, bases, namespace):
            if namespace.get("__module__") == __name__:  # the base itself
                return super().__new__(mcls, typename, bases, namespace)
            return _make_class(typename, namespace)

    class NamedTuple(metaclass=_Maker):
        """Base of the agent's typed records (see the module's docstring)."""
