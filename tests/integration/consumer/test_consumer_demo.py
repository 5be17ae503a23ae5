"""Acceptance 4: ``xdsi-gateway demo`` runs the whole exchange and exits 0."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.consumer.consumer_env import run_consumer


def test_demo_exits_0_and_prints_the_verified_instance_count(tmp_path: Path) -> None:
    result = run_consumer(tmp_path, "demo", "--instances", "24", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in range(1, 9):
        assert f"[{step}/8]" in out
    found = re.search(r"verified (\d+) instances byte for byte", out)
    assert found is not None and int(found[1]) == 24, out
    assert "24/24 data sets identical" in out
    folder = re.search(r"exchange in (\S+)", out)
    assert folder is not None and not Path(folder[1]).exists()  # cleaned up
