"""``xdsi-gateway demo --communities 3``: three communities, a study in each, all fetched from the
first one and verified byte for byte; exit 0."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.consumer.consumer_env import run_consumer


def test_demo_with_three_communities_exits_0(tmp_path: Path) -> None:
    result = run_consumer(tmp_path, "demo", "--communities", "3", "--instances", "18", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in range(1, 8):
        assert f"[{step}/7]" in out
    homes = set(re.findall(r"urn:oid:1\.3\.6\.1\.4\.1\.21367\.13\.70\.[123]\b", out))
    assert len(homes) == 3
    assert "18 instances of 3 studies" in out
    assert "18/18 data sets identical to what was sent" in out
    assert "verified 18 instances of 3 communities byte for byte" in out
    folder = re.search(r"communities in (\S+)", out)
    assert folder is not None and not Path(folder[1]).exists()  # cleaned up
