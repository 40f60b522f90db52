"""Progress bars: Ultralytics' own ``TQDM`` (the look of ``yolo`` commands), always on stderr so that stdout
keeps a command's results (and ``--json`` its JSON), and only when there is more than one step to show."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "image") -> Iterator[T]:
    """``items``, with a progress bar named ``desc`` while they are consumed (none for fewer than two)."""
    from spikedet.offline import import_ultralytics

    import_ultralytics()
    from ultralytics.utils import TQDM

    if total is None and hasattr(items, "__len__"):
        total = len(items)
    if total is not None and total < 2:
        yield from items
        return
    yield from TQDM(items, desc=desc, total=total, unit=unit, file=sys.stderr)
