"""Which far-end sample goes with each captured one: pairing by the devices' clocks.

AEC3 cancels an echo only if it was handed the echo's reference no later than the echo
itself (it then finds the delay on its own, up to about half a second), and an echo
comes back no sooner than its sound left the speaker. PortAudio says when that was: an
output block sounds at its DAC time and an input block was captured at its ADC time
(the callbacks' `time_info`). So a captured sample is paired with the far-end sample
that sounded `lead_ms` after it was captured, and every echo, however short its path,
reaches AEC3 after its reference. Pairing by how much reference happened to be queued
instead (the band this replaced) moved with the callbacks' timing: kept under 50 ms of
lag, it left an echo 46-50 ms after its callback (a speaker against the microphone on
this stack) uncancelled now and then.

The pairing is an offset between the two streams' sample counters (both at 16 kHz). It
is estimated at every frame and moved only when the median of the last few estimates
is more than `tolerance_ms` away from it: the callbacks' jitter never shifts it (AEC3
has to find its delay again after a shift), a restarted or reopened stream does.

Where a host API gives no DAC/ADC times, the callback's own time with the stream's
stated latency stands in for them.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

from emodesk.core.pcm import MIC_RATE


@dataclass(frozen=True, slots=True)
class BlockClock:
    """One callback's block: its first sample's index in the engine's ring (at the
    device's rate), and when that sample sounded or was captured: by PortAudio's clock
    (`device_time`, 0 where the host API gives none) and as estimated on the monotonic
    clock from the callback's time and the stream's latency (`estimate`)."""

    index: int
    device_time: float
    estimate: float


class EchoAlignment:
    def __init__(
        self, *, lead_ms: float = 10.0, tolerance_ms: float = 4.0, window: int = 5
    ) -> None:
        self.lead_s = lead_ms / 1000
        self._tolerance = round(tolerance_ms * MIC_RATE / 1000)
        self._estimates: deque[float] = deque(maxlen=window)
        self._offset: int | None = None
        self.moves = 0  # times the pairing moved after the first estimate

    @property
    def offset(self) -> int | None:
        """Far-end index minus captured index (16 kHz samples), once estimated."""
        return self._offset

    def reset(self) -> None:
        self._estimates.clear()
        self._offset = None

    def far_index(
        self,
        captured: int,
        capture_clock: BlockClock | None,
        capture_rate: int,
        output_clock: BlockClock | None,
        output_rate: int,
    ) -> int | None:
        """The 16 kHz far-end index to pair with the captured sample at 16 kHz index
        `captured`; None until both streams have said when their blocks were."""
        if capture_clock is None or output_clock is None:
            return None if self._offset is None else captured + self._offset
        if capture_clock.device_time > 0 and output_clock.device_time > 0:
            captured_at, sounded_at = capture_clock.device_time, output_clock.device_time
        else:
            captured_at, sounded_at = capture_clock.estimate, output_clock.estimate
        at = captured_at + (captured / MIC_RATE - capture_clock.index / capture_rate)
        far = (output_clock.index / output_rate + (at + self.lead_s - sounded_at)) * MIC_RATE
        self._estimates.append(far - captured)
        wanted = round(statistics.median(self._estimates))
        if self._offset is None:
            self._offset = wanted
        elif abs(wanted - self._offset) > self._tolerance:
            self._offset = wanted
            self.moves += 1
        return captured + self._offset
