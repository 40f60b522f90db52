"""Output files: one rule for what every command and pipeline writes (suffix, folder, default name, and
normal permissions: ``safetensors``' own ``save_file`` creates files readable by their owner only, 0600, so
tensors are written through :func:`write_safetensors`, which honours the umask as any other file does).

    >>> output_file(None, (".onnx",), default="yolov5n-a2s.onnx")
    PosixPath('yolov5n-a2s.onnx')
    >>> output_file("model.pt", (".safetensors",))
    Traceback (most recent call last):
    ...
    spikedet.errors.SpikedetError: output must be a .safetensors file, got 'model.pt'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from spikedet.errors import SpikedetError


def output_file(path: str | Path | None, suffixes: Sequence[str], default: str | Path | None = None,
                existing_folder: bool = False) -> Path:
    """The file to write: ``path`` (or ``default``, a name in the current folder) when its suffix is one of
    ``suffixes``; ``existing_folder`` also requires its folder to exist (else the writer creates it)."""
    chosen = Path(path if path is not None else default).expanduser()
    if chosen.suffix.lower() not in suffixes:
        kinds = ", ".join(suffixes[:-1]) + (" or " if len(suffixes) > 1 else "") + suffixes[-1]
        raise SpikedetError(f"output must be a {kinds} file, got {str(chosen)!r}")
    if chosen.is_dir():
        raise SpikedetError(f"output {str(chosen)!r} is a folder")
    if existing_folder and not chosen.parent.is_dir():
        raise SpikedetError(f"output folder {str(chosen.parent)!r} does not exist")
    _check_parents(chosen)
    return chosen


def _check_parents(path: Path) -> None:
    """Refuse, before any work, a path under an existing file (the writer's mkdir would fail only at the end)."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise SpikedetError(f"cannot write {str(path)!r}: {str(parent)!r} is a file, not a folder")
            return


def output_folder(path: str | Path) -> Path:
    """The folder to write into: ``path``, created when missing; an existing file there is refused."""
    chosen = Path(path).expanduser()
    if chosen.exists() and not chosen.is_dir():
        raise SpikedetError(f"output {str(chosen)!r} is a file, not a folder")
    _check_parents(chosen)
    return chosen


def write_safetensors(tensors: dict, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``tensors`` as a safetensors file with the permissions of any new file (``0666`` less the umask)."""
    from safetensors.torch import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(save(tensors, metadata=metadata))
    return path
