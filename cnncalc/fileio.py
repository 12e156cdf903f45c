"""Writing files safely: atomically (temporary file, then rename), and never over the user's inputs."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from cnncalc.errors import CnnCalcError


def check_not_input(target: Path, inputs: Iterable[str | Path | None], option: str) -> None:
    for source in inputs:
        if source is not None and Path(source).exists() and target.exists() and \
                os.path.samefile(target, source):
            raise CnnCalcError(f"{option} {target} is one of the files you gave as input; cnncalc never writes "
                               "over a spec, weights or input", fix=f"Choose another path for {option}.")


def write_atomic(path: str | Path, write: Callable[[Path], None], *, inputs: Iterable[str | Path | None] = (),
                 option: str = "--output") -> Path:
    """Call `write(tmp_path)` to fill a temporary file next to `path`, then rename it into place."""
    target = Path(path)
    check_not_input(target, inputs, option)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise CnnCalcError(f"cannot write {target}: the directory {directory} does not exist",
                           fix="Create it first, or choose another path.")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, target)
    except OSError as err:
        raise CnnCalcError(f"cannot write {target}: {err.strerror}", fix="Check the path and its permissions.") \
            from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def write_text_atomic(path: str | Path, text: str, **kwargs) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), **kwargs)
