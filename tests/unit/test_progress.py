"""The progress bar of the data-moving commands (``gateway/progress.py``), without sockets."""

from __future__ import annotations

import io
from pathlib import Path

from gateway.progress import CountingAttachment, Progress, human, short_uid


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_human_units() -> None:
    assert [human(n) for n in (5, 2048, 3 * 1024**3)] == ["5 B", "2.0 KiB", "3.0 GiB"]


def test_live_bar_is_throttled_and_finished() -> None:
    stream, clock = io.StringIO(), Clock()
    bar = Progress("sending", 1000, stream=stream, live=True, width=10, clock=clock)
    bar.advance(100)
    bar.advance(100)  # same instant: not redrawn
    clock.now += 1
    bar.advance(300)
    bar.close()
    bar.close()
    text = stream.getvalue()
    assert text.count("\r") == 3
    assert "[#####-----]  50.0%" in text and text.endswith("500 B/s\n")


def test_quiet_bar_prints_one_summary_line() -> None:
    stream = io.StringIO()
    bar = Progress("receiving", None, stream=stream, live=False)
    bar.advance(2048)
    bar.close()
    assert stream.getvalue().startswith("receiving 2.0 KiB") and stream.getvalue().count("\n") == 1


def test_counting_attachment_counts_what_is_read(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1000)
    bar = Progress("s", 1000, stream=io.StringIO(), live=False)
    attachment = CountingAttachment(content_id="c", path=path, progress=bar)
    assert b"".join(attachment.chunks(300)) == b"x" * 1000
    assert bar.done == 1000


def test_item_bar_counts_instances_and_their_bytes() -> None:
    stream, clock = io.StringIO(), Clock()
    bar = Progress(
        "study 1.2", 4, unit="instances", stream=stream, live=False, width=4, clock=clock
    )
    bar.advance(1)  # already present: no bytes
    clock.now += 2
    bar.advance(2, 4096)
    assert (bar.done, bar.bytes) == (3, 4096)
    bar.close()
    assert stream.getvalue() == "study 1.2 [###-] 3/4 instances  4.0 KiB  2.0 KiB/s\n"


def test_short_uid_keeps_both_ends() -> None:
    uid = "1.2.840.113619.2.55.3.604688119.971.1234567890.123"
    short = short_uid(uid)
    assert len(short) == 24 and short.startswith("1.2.840.113") and short.endswith("890.123")
    assert short_uid("1.2.3") == "1.2.3"
