"""A chapter's parameters as a typed dataclass: the single source of their defaults.

Each chapter module defines ``class Params(ChapterParams)`` whose fields are its notebook's parameters
with the ``ci`` profile's values as defaults and a one-line ``help``. From it:

- the notebook generator (``tools/nbNN.py``) writes the notebook's ``parameters`` cell
  (:func:`parameters_cell`), so the cell, the dataclass and the ``ci`` profile cannot drift apart;
- the notebook's next cell builds the typed, checked configuration from the cell's plain values
  (``cfg = ch2.Params.from_namespace(globals())``): a value of the wrong type (``images = "three"``) is a
  :class:`~xaikit.errors.ConfigError` naming the parameter; an attribute that does not exist is an
  ``AttributeError`` (the old ``cfg.get`` returned None for a typo);
- :meth:`ChapterParams.resolve` derives what depends on the values: the torch device (checked), seeds,
  thread caps.

Profiles (``profiles/*.yaml``) may only set fields of the dataclass: the runner's profile check reads
the parameters cell, which is generated from it.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from ..config import seed_everything, set_threads
from ..core.devices import resolve_device
from ..errors import ConfigError


def param(default, help: str = "", *, mutable: bool = False):  # noqa: A002 - mirrors argparse
    """A dataclass field with a ``help`` text (shown as the parameters cell's comment)."""
    if mutable or isinstance(default, (list, dict, set)):
        return field(default_factory=lambda d=default: _copy(d), metadata={"help": help})
    return field(default=default, metadata={"help": help})


def _copy(v):
    import copy

    return copy.deepcopy(v)


def _accepts(tp, value) -> bool:
    """Whether ``value`` fits the annotation ``tp`` (the simple types notebook parameters use)."""
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is bool:
        return isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (list, tuple):
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            return False
        return not args or all(_accepts(args[0], v) for v in value)
    if origin is dict:
        args = typing.get_args(tp)
        if not isinstance(value, dict):
            return False
        return not args or all(_accepts(args[0], k) and _accepts(args[1], v) for k, v in value.items())
    if tp in (list, tuple):
        return isinstance(value, (list, tuple))
    if tp is dict:
        return isinstance(value, dict)
    return isinstance(value, tp) if isinstance(tp, type) else True


@dataclass
class ChapterParams:
    """Parameters every chapter notebook declares."""

    profile: str = param("ci", "set by the runner (python -m xaikit.run --profile ...): ci, default, rehearsal, full")
    seed: int = param(0, "seeds Python, NumPy and torch, and every data draw")
    device: str = param("auto", "auto (CUDA when present), cpu, cuda, cuda:1")
    protocol: str = param("authors", "authors: each table runs the code behind its published numbers "
                                     "(docs/CONVENTIONS.md); paper: the papers' text")

    # ------------------------------------------------------------------ construction and checks
    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any], resolve: bool = True):
        """The parameters found in ``namespace`` (a notebook's ``globals()``), checked and resolved."""
        kw = {n: namespace[n] for n in cls.names() if n in namespace}
        return cls.create(resolve=resolve, **kw)

    @classmethod
    def create(cls, resolve: bool = True, **kw):
        unknown = sorted(set(kw) - set(cls.names()))
        if unknown:
            raise ConfigError(f"{cls.__module__.rsplit('.', 1)[-1]}: unknown parameter(s) {unknown}; the "
                              f"parameters are {cls.names()}")
        obj = cls(**kw)
        obj.check()
        return obj.resolve() if resolve else obj

    def check(self) -> None:
        """Every value fits its field's type; else a ConfigError naming the parameter and the type."""
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            v = getattr(self, f.name)
            if not _accepts(hints.get(f.name, Any), v):
                raise ConfigError(f"parameter {f.name}={v!r} must be {_type_name(hints.get(f.name))}")
        if self.protocol not in ("authors", "paper"):
            raise ConfigError(f"parameter protocol={self.protocol!r} must be 'authors' (the code behind the "
                              "published numbers) or 'paper' (the papers' text)")

    def resolve(self):
        """Derived state: the checked torch device, seeds, thread caps. Returns self."""
        self.torch_device = resolve_device(self.device)
        seed_everything(int(self.seed))
        set_threads(None)
        return self

    # ------------------------------------------------------------------ mapping-style access
    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def get(self, key: str, default=None):  # for code that takes any mapping (reports, provenance)
        if key == "device" and hasattr(self, "torch_device"):
            return self.torch_device
        return getattr(self, key, default)

    def items(self):
        return self.to_dict().items()

    def keys(self):
        return self.to_dict().keys()

    def __getitem__(self, key):
        if key not in self.names():
            raise KeyError(key)
        return self.get(key)

    def __contains__(self, key) -> bool:
        return key in self.names()

    def replace(self, **changes):
        """A copy with ``changes`` (checked; resolved like the original)."""
        new = dataclasses.replace(self, **changes)
        new.check()
        if hasattr(self, "torch_device"):
            new.torch_device = self.torch_device
        return new


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def parameters_cell(cls: type) -> str:
    """The notebook's ``parameters`` cell for a :class:`ChapterParams` subclass: one plain assignment per
    field with its default, and its help as a comment; a field that also accepts None while its default is
    not None is annotated ``"Optional[int]"`` (papermill reports it, the profile check accepts None)."""
    lines = []
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        args = typing.get_args(hints.get(f.name))
        if default is not None and type(None) in args:  # say that None is allowed too (papermill reads it)
            inner = [a for a in args if a is not type(None)]
            name = getattr(inner[0], "__name__", "object") if len(inner) == 1 else "object"
            text = f'{f.name}: "Optional[{name}]" = {default!r}'
        else:
            text = f"{f.name} = {default!r}"
        # papermill's parameter parser reads a quote in a comment as the start of a string (use ’), and an
        # '=' in a comment as a second assignment: a help text never holds one
        help_ = f.metadata.get("help", "").replace("'", "’").replace('"', "”")
        if "=" in help_:
            raise ValueError(f"{cls.__name__}.{f.name}: its help text may not contain '=' (papermill cannot parse it)")
        lines.append(f"{text}  # {help_}" if help_ else text)
    return "\n".join(lines)
