"""The audio engine's ring buffers as the window's scope and level meter read them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class RingView:
    """A ring buffer looked up on each read: the engine may replace its rings (a new
    output rate), and the scope must follow without being re-attached. Satisfies the
    ui's `SampleSource`; an owner without the ring reads as silence."""

    def __init__(self, owner: object, name: str) -> None:
        self._owner = owner
        self._name = name

    @property
    def total_written(self) -> int:
        ring = getattr(self._owner, self._name, None)
        return 0 if ring is None else int(ring.total_written)

    def latest(self, n: int) -> npt.NDArray[Any]:
        ring = getattr(self._owner, self._name, None)
        if ring is None:
            import numpy as np

            return np.zeros(n, dtype=np.int16)
        result: np.ndarray[Any, Any] = ring.latest(n)
        return result
