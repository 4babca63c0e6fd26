"""Profiles: the parameter sets papermill injects into the notebooks (``profiles/<name>.yaml``).

A profile maps notebook stems to ``{parameter: plain value}``. Two sections are special:

- ``_defaults``: merged into every notebook that declares the key (a notebook's own section wins);
- ``_base: <profile>``: the profile *extends* another one. Its sections are merged key by key over the
  base's; its ``_defaults`` override the base's value of that key in every section (and then its own
  sections override those). So ``rehearsal`` is ``full`` with only its sizes and paths changed, and a
  test can check that nothing else differs.

Used by the runner (:mod:`xaikit.run`) and the preflight (:mod:`xaikit.preflight`); imports nothing of
xaikit above :mod:`xaikit.config`.
"""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

from .config import check_name, repo_root
from .errors import ConfigError

BASE_KEY = "_base"
DEFAULTS_KEY = "_defaults"
RESERVED = ("profile",)  # injected by the runner into every notebook


# ----------------------------------------------------------------------------------- profiles
def profiles_dir() -> Path:
    return repo_root() / "profiles"


def notebooks_dir() -> Path:
    return repo_root() / "notebooks"


def available_profiles(folder: str | os.PathLike | None = None) -> list[str]:
    folder = Path(folder) if folder else profiles_dir()
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_profile(profile: str | os.PathLike, folder: str | os.PathLike | None = None,
                 _seen: tuple = ()) -> tuple[str, dict]:
    """``(name, {stem: {param: value}})`` from ``profiles/<profile>.yaml`` or from a YAML path
    (the profile's name is then the file's stem). Sections may be empty (``null``). A ``_base: <name>``
    entry merges the profile over its base (module docstring); the result holds no ``_base`` key."""
    import yaml

    p = Path(profile)
    if p.suffix not in (".yaml", ".yml"):
        p = (Path(folder) if folder else profiles_dir()) / f"{_plain_name(profile)}.yaml"
    _plain_name(p.stem)  # the name becomes a folder under the reports root
    if not p.exists():
        raise ConfigError(f"profile file {p} not found; available profiles: "
                          f"{available_profiles(p.parent) or 'none'} (or pass a path to a .yaml file)")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"profile {p} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"profile {p} must map notebook stems to parameter dicts, got {type(data).__name__}")
    base = data.pop(BASE_KEY, None)
    out = {}
    for key, section in data.items():
        section = section or {}
        if not isinstance(section, dict):
            raise ConfigError(f"profile {p}: section {key!r} must be a mapping of parameters, "
                              f"got {section!r}")
        bad = [k for k in section if k in RESERVED]
        if bad:
            raise ConfigError(f"profile {p}: section {key!r} sets {bad}, which the runner injects itself; "
                              "remove it (the profile's name is the file name)")
        out[str(key)] = dict(section)
    if base is not None:
        if not isinstance(base, str) or not base:
            raise ConfigError(f"profile {p}: {BASE_KEY} must name another profile, got {base!r}")
        if base in _seen or base == p.stem:
            raise ConfigError(f"profile {p}: {BASE_KEY} chain {list(_seen) + [p.stem, base]} is circular")
        _, parent = load_profile(base, p.parent, _seen + (p.stem,))
        merged = {k: dict(v) for k, v in parent.items()}
        # the child's `_defaults` beat the base everywhere (a rehearsal's device: cpu overrides every
        # section of full that says cuda); its own sections beat both
        for key, value in out.get(DEFAULTS_KEY, {}).items():
            for name, section in merged.items():
                if name != DEFAULTS_KEY and key in section:
                    section[key] = value
        for key, section in out.items():
            merged.setdefault(key, {}).update(section)
        out = merged
    return p.stem, out


#: a profile or notebook name that may become a folder name under the reports root


def _plain_name(name) -> str:
    return check_name(name, "profile")


def base_of(profile: str | os.PathLike, folder: str | os.PathLike | None = None) -> str | None:
    """The ``_base`` a profile file names (None when it extends nothing)."""
    import yaml

    p = Path(profile)
    if p.suffix not in (".yaml", ".yml"):
        p = (Path(folder) if folder else profiles_dir()) / f"{profile}.yaml"
    data = yaml.safe_load(p.read_text()) or {}
    return data.get(BASE_KEY) if isinstance(data, dict) else None


def list_notebooks(folder: str | os.PathLike | None = None) -> list[Path]:
    folder = Path(folder) if folder else notebooks_dir()
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith((".", "_")))


def select(notebooks: Sequence[Path], patterns: Iterable[str] | None) -> list[Path]:
    """Notebooks whose stem equals or starts with one of ``patterns`` (``"02"`` -> ``02_opti_cam``)."""
    if not patterns:
        return list(notebooks)
    chosen, unknown = [], []
    for pat in patterns:
        pat = Path(pat).stem if pat.endswith(".ipynb") else pat
        hits = [nb for nb in notebooks if nb.stem == pat or nb.stem.startswith(pat)]
        if not hits:
            unknown.append(pat)
        chosen += [h for h in hits if h not in chosen]
    if unknown:
        raise ConfigError(f"no notebook matches {unknown}; available: {[nb.stem for nb in notebooks]}")
    return sorted(chosen)


def declared_parameters(notebook: str | os.PathLike, literal_only: bool = False) -> dict:
    """``{name: default}`` of the notebook's ``parameters`` cell (papermill's ``inspect_notebook``).
    A default that is not a Python literal is given as its source text, or left out with ``literal_only``."""
    import papermill as pm

    info = pm.inspect_notebook(str(notebook))
    out = {}
    for name, p in info.items():
        try:
            out[name] = ast.literal_eval(p["default"])
        except (ValueError, SyntaxError):
            if not literal_only:
                out[name] = p["default"]
    return out


def optional_parameters(notebook: str | os.PathLike) -> set:
    """Names of the parameters the notebook annotates ``Optional[...]`` (None accepted besides the default's
    type)."""
    import papermill as pm

    return {n for n, p in pm.inspect_notebook(str(notebook)).items()
            if str(p.get("inferred_type_name", "")).startswith("Optional[")}


def expected_type(default) -> str | None:
    """The type a profile value must have for a parameter declared with ``default`` (None: anything)."""
    if default is None:
        return None
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float (or int)"
    if isinstance(default, str):
        return "str"
    if isinstance(default, (list, tuple)):
        return "list"
    if isinstance(default, dict):
        return "dict"
    return None


def type_matches(default, value) -> bool:
    """Whether ``value`` (from a profile) has the type of the declared ``default``: None defaults accept
    anything, an int is accepted for a float, a bool is never taken for a number, lists stay lists and
    dicts stay dicts."""
    kind = expected_type(default)
    if kind is None:
        return True
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind.startswith("float"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "list":
        return isinstance(value, (list, tuple))
    return isinstance(value, dict)


def parameters_for(stem: str, profile_name: str, profile: dict, declared: Iterable[str] | None = None,
                   device: str | None = None) -> dict:
    """The parameters papermill injects: ``_defaults`` keys the notebook declares, then the
    notebook's own section, then ``profile`` (and ``device`` when the runner overrides it)."""
    declared = set(declared) if declared is not None else None
    params = {k: v for k, v in profile.get(DEFAULTS_KEY, {}).items() if declared is None or k in declared}
    params.update(profile.get(stem, {}))
    params["profile"] = profile_name
    if device is not None and (declared is None or "device" in declared):
        params["device"] = str(device)
    return params


def check_profile(profile_name: str, profile: dict, notebooks: Sequence[Path]) -> list[str]:
    """Problems that would make an override silently reach nothing: a section naming no notebook,
    a key the notebook does not declare, a ``_defaults`` key no notebook declares, a notebook that
    does not declare ``profile``. Returns human-readable lines (empty when all is well)."""
    problems = []
    by_stem = {nb.stem: nb for nb in notebooks}
    declared_all, literal, optional = {}, {}, {}
    for nb in notebooks:
        try:
            declared_all[nb.stem] = declared_parameters(nb)
            literal[nb.stem] = declared_parameters(nb, literal_only=True)
            optional[nb.stem] = optional_parameters(nb)
        except Exception as exc:  # noqa: BLE001 - report, do not crash the check
            problems.append(f"{nb.name}: cannot read its parameters cell ({type(exc).__name__}: {exc})")
            continue
        if not declared_all[nb.stem]:
            problems.append(f"{nb.name}: no cell tagged 'parameters'; tag the first code cell 'parameters'")
        elif "profile" not in declared_all[nb.stem]:
            problems.append(f"{nb.name}: its parameters cell does not declare `profile` (add profile = \"ci\")")
    for stem, section in profile.items():
        if stem == DEFAULTS_KEY:
            continue
        if stem not in by_stem:
            if section:
                problems.append(f"profile {profile_name}: section {stem!r} names no notebook in "
                                f"{notebooks[0].parent if notebooks else 'notebooks/'}")
            continue
        if stem not in declared_all:
            continue
        for key in section:
            if key not in declared_all[stem]:
                problems.append(f"profile {profile_name}: {stem}.{key} is not a parameter of {stem}.ipynb "
                                f"(it declares {sorted(declared_all[stem])})")
    for key in profile.get(DEFAULTS_KEY, {}):
        if declared_all and not any(key in d for d in declared_all.values()):
            problems.append(f"profile {profile_name}: _defaults.{key} is a parameter of no notebook")
    # values of the wrong type: what each notebook would receive against its declared default
    for stem, defaults in literal.items():
        section = profile.get(stem)
        if section is None and not profile.get(DEFAULTS_KEY):
            continue
        for key, value in parameters_for(stem, profile_name, profile, declared_all[stem]).items():
            if key in RESERVED or key not in defaults or type_matches(defaults[key], value):
                continue
            if value is None and key in optional.get(stem, ()):
                continue
            where = "" if key in (section or {}) else " (from _defaults)"
            problems.append(f"profile {profile_name}: {stem}.{key} = {value!r}{where} is a {type(value).__name__}, "
                            f"but {stem}.ipynb declares {key} = {defaults[key]!r}: expected "
                            f"{expected_type(defaults[key])}; correct the value in the profile")
    return problems


