"""Progress for long jobs: a tqdm bar on a terminal, a plain line every few seconds in a log.

A job run under ``nohup`` or in CI writes to a file, where a tqdm bar is a stream of
carriage returns nobody can read; there a line with done/total, rate and ETA is printed at
most every ``interval`` seconds (and at the end), so the log shows where the job is.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable, NamedTuple, TextIO


def format_seconds(seconds: float) -> str:
    """``3h05m``, ``4m12s``, ``9s``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


#: No estimate before this share of the items is done: the first items of a stage arrive
#: after its fixed start-up (a reference burst, a whole chunk's timing), so a rate taken
#: from them overstates the time left many times over.
ETA_AFTER = 0.01


class Progress:
    """done/total of one job, drawn as a bar or as plain lines depending on the stream."""

    def __init__(self, total: int, desc: str, unit: str = "it", initial: int = 0,
                 interval: float = 10.0, stream: TextIO | None = None) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.done = self._start_done = initial
        self.interval = interval
        self.stream = stream or sys.stderr
        self._started = time.monotonic()
        self._last_line = -math.inf
        self._bar: Any = None
        if self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit,
                             file=self.stream, dynamic_ncols=True, mininterval=1.0)

    def update(self, done: int, eta_seconds: float | None = None, note: str = "") -> None:
        """Set the count of finished items; ``eta_seconds`` overrides the rate's estimate."""
        step, self.done = done - self.done, done
        if self._bar is not None:
            if note:
                self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(step)
            return
        now = time.monotonic()
        if now - self._last_line >= self.interval or done >= self.total:
            self._last_line = now
            print(self.line(eta_seconds, note), file=self.stream, flush=True)

    def line(self, eta_seconds: float | None = None, note: str = "") -> str:
        """The plain progress line."""
        elapsed = time.monotonic() - self._started
        finished_here = self.done - self._start_done
        rate = finished_here / elapsed if elapsed > 0 else 0.0
        if eta_seconds is None and rate > 0 and finished_here >= self.total * ETA_AFTER:
            eta_seconds = (self.total - self.done) / rate
        share = 100.0 * self.done / self.total if self.total else 100.0
        eta = format_seconds(eta_seconds) if eta_seconds is not None else "?"
        text = (f"{self.desc}: {self.done}/{self.total} {self.unit} ({share:.0f} %), "
                f"{rate * 60:.2f} {self.unit}/min, elapsed {format_seconds(elapsed)}, "
                f"ETA {eta}")
        return f"{text}, {note}" if note else text

    def close(self) -> None:
        """End the bar (a plain stream already has its last line)."""
        if self._bar is not None:
            self._bar.close()


class StageProgress(NamedTuple):
    """What a job in stages (a profile: units, then networks) reports its progress to:
    ``start(stage, total)``, ``advance(n)`` items done, ``finish()`` the stage. Silent by
    default; `stage_callbacks` draws each stage as a `Progress`, a front end may do its own."""

    start: Callable[[str, int], None] = lambda stage, total: None
    advance: Callable[[int], None] = lambda n: None
    finish: Callable[[], None] = lambda: None


def stage_callbacks(unit: str = "model", stream: TextIO | None = None) -> StageProgress:
    """`StageProgress` over one `Progress` per stage, on ``stream`` (default stderr)."""
    state: dict[str, Progress] = {}

    def start(stage: str, total: int) -> None:
        state["bar"] = Progress(total, stage, unit, stream=stream)

    def advance(n: int) -> None:
        bar = state.get("bar")
        if bar is not None:
            bar.update(bar.done + n)

    def finish() -> None:
        bar = state.pop("bar", None)
        if bar is not None:
            bar.close()

    return StageProgress(start, advance, finish)
