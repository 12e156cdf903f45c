"""YAML spec -> Network: find the file (or a bundled spec), read it with line marks, expand it, and apply
`--set` overrides. Everything after loading sees one flat list of layers with PyTorch-style dotted names.
"""
from __future__ import annotations

import difflib
import gc
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cnncalc.errors import SpecError, Where, did_you_mean, raise_all, shown_text
from cnncalc.expand import Expander, validation_errors
from cnncalc.layers import FIELD_ALIASES
from cnncalc.network import Network, Origin
from cnncalc.limits import MAX_FILE_BYTES, MAX_OPTION, MAX_SET_NODES
from cnncalc.yamlmarks import load_marked


# ---- finding a spec ----------------------------------------------------------------------------------------

def bundled_dir() -> Path:
    """Bundled specs: inside the installed package, or the checkout's top-level specs/ (editable installs)."""
    packaged = Path(__file__).parent / "specs"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "specs"


def bundled_names() -> list[str]:
    return sorted(p.stem for p in bundled_dir().glob("*.yaml"))


def locate(spec: str) -> tuple[Path, bool]:
    """A spec argument as a path, and whether it is a bundled spec (a bundled name with no such file here)."""
    if not spec.strip():
        raise SpecError("no spec given (the name is empty)", fix="Give a path to a YAML spec, or a bundled name: "
                                                                 f"{', '.join(bundled_names())}.")
    path = Path(spec)
    if path.is_file():
        return path, False
    bundled = bundled_dir() / (spec if spec.endswith(".yaml") else spec + ".yaml")
    if not path.exists() and "/" not in spec and bundled.is_file():
        return bundled, True
    names = bundled_names()
    if path.is_dir():
        raise SpecError(f"'{spec}' is a directory, not a spec file", fix="Name a .yaml file.")
    if path.exists():
        raise SpecError(f"'{spec}' is not a regular file (a pipe or a device?)", fix="Save the spec to a .yaml file.")
    close = difflib.get_close_matches(Path(spec).stem, names, n=1)
    hint = f"Did you mean the bundled '{close[0]}'? " if close else ""
    raise SpecError(f"no such file '{spec}'",
                    fix=f"{hint}Give a path to a YAML spec, or a bundled name: {', '.join(names)}.")


def load(spec: str | Path) -> Network:
    """A spec file, or a bundled spec by name (shown in messages as 'alexnet (bundled)', not by where this
    machine keeps it)."""
    path, bundled = locate(str(spec))
    shown = f"{path.stem} (bundled)" if bundled or path.parent.resolve() == bundled_dir().resolve() else str(spec)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SpecError(f"the file is larger than {MAX_FILE_BYTES // 2**20} MiB",
                            where=Where(shown), fix="Use blocks and `repeat` to keep specs small.")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError("is not UTF-8 text", where=Where(shown), fix="Save the spec as UTF-8 YAML.") from None
    except OSError as err:
        raise SpecError(f"cannot read it: {err.strerror}", where=Where(shown),
                        fix="Check the path and its permissions.") from None
    return replace(parse(text, shown), path=str(path))


def parse(text: str, file: str = "<spec>") -> Network:
    """Parse spec text. The garbage collector is paused: it makes large specs super-linear otherwise."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return Expander(file).network(load_marked(text, file))
    finally:
        if was_enabled:
            gc.enable()


# ---- --set overrides ---------------------------------------------------------------------------------------

def apply_overrides(network: Network, assignments: list[str]) -> Network:
    """`conv1.stride=2`: set a field of a named layer (after blocks are expanded), validated like the spec.

    The value is read as YAML (`2`, `same`, `[1, 2]`, `true`). Keras field spellings are accepted."""
    if not assignments:
        return network
    layers = {layer.name: layer for layer in network.layers}
    changes: dict[str, dict[str, Any]] = {}
    given: dict[str, list[str]] = {}
    for text in assignments:
        if len(text) > MAX_OPTION:
            raise SpecError(f"--set '{shown_text(text)}' is longer than {MAX_OPTION:,} characters",
                            fix="Set one field at a time, with a short value.")
        target, equals, value_text = text.partition("=")
        layer_name, dot, field_name = target.strip().rpartition(".")
        if not equals or not dot or not field_name:
            raise SpecError(f"--set '{text}' is not LAYER.FIELD=VALUE", fix="Write e.g. --set conv1.stride=2.")
        if layer_name not in layers:
            raise SpecError(f"--set '{text}': no layer named '{layer_name}'",
                            fix=did_you_mean(layer_name, layers) + "`cnncalc summarize` lists the names.")
        try:
            value = load_marked(value_text, "--set", max_nodes=MAX_SET_NODES) if value_text.strip() else None
        except SpecError as err:
            raise SpecError(f"--set '{text}': cannot read the value: {err.message}",
                            fix="Write a number, a word, or a [list].") from None
        layer = layers[layer_name]
        cls = type(layer)
        field_name = FIELD_ALIASES.get(field_name, field_name) if field_name not in cls.model_fields else field_name
        if field_name in ("type", "name", "inputs") or field_name not in cls.model_fields:
            allowed = [f for f in cls.model_fields if f not in ("type", "name", "inputs")]
            raise SpecError(f"--set '{text}': {layer.kind} has no field '{field_name}'",
                            fix=did_you_mean(field_name, allowed) + (f"{layer.kind} takes: {', '.join(allowed)}."
                                                                     if allowed else f"{layer.kind} takes no fields."))
        changes.setdefault(layer_name, {})[field_name] = value
        given.setdefault(layer_name, []).append(text)
    new_layers = []
    for layer in network.layers:
        if layer.name in changes:
            data = {**layer.model_dump(), **changes[layer.name]}
            try:
                layer = type(layer).model_validate(data)
            except ValidationError as err:
                origin = network.origins.get(layer.name, Origin((0, 0), {}))
                origin = Origin(origin.mark, {}, "value from --set " + ", ".join(given[layer.name]))
                raise_all(validation_errors(err, type(layer), layer.kind, layer.name, data, origin, network.file))
        new_layers.append(layer)
    return replace(network, layers=tuple(new_layers))
