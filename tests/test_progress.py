"""Progress reporting: plain lines in a log, so nohup files and CI logs show where a job is."""

from __future__ import annotations

import io

from edgenas.progress import Progress, format_seconds, stage_callbacks


def test_plain_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    bar = Progress(10, "profile", "model", interval=0.0, stream=stream)
    bar.update(5, note="chunk 1")
    bar.update(10)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("profile: 5/10 model (50 %)") and lines[0].endswith("chunk 1")
    assert "ETA" in lines[0] and lines[-1].startswith("profile: 10/10 model (100 %)")
    assert "\r" not in stream.getvalue()


def test_lines_are_rate_limited_but_the_last_one_is_always_printed() -> None:
    stream = io.StringIO()
    bar = Progress(100, "train", "batch", interval=3600.0, stream=stream)
    for i in range(1, 101):
        bar.update(i)
    assert len(stream.getvalue().splitlines()) == 2      # the first and the last


def test_stage_callbacks_and_eta_override() -> None:
    stream = io.StringIO()
    start, advance, finish = stage_callbacks("model", stream)
    start("calibration", 4)
    advance(4)
    finish()
    assert "calibration: 4/4 model" in stream.getvalue()
    line = Progress(10, "gt", "trainings", stream=io.StringIO()).line(eta_seconds=3725)
    assert "ETA 1h02m" in line
    assert format_seconds(59) == "59s" and format_seconds(61) == "1m01s"


def test_no_estimate_from_the_first_of_thousands() -> None:
    bar = Progress(6966, "units", "model", stream=io.StringIO())
    bar.update(1)
    assert "ETA ?" in bar.line()
    bar.update(100)
    assert "ETA ?" not in bar.line()
