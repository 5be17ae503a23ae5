"""Running the real ``xdsi-gateway`` command in its own process, with a clean environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True, slots=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.strip().splitlines()


def clean_env(**extra: str) -> dict[str, str]:
    """The test runner's environment without its ``XDSI_*`` settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDSI_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run(cwd: Path, *argv: str, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
    """``python -m gateway ARGV`` in ``cwd``; its exit code, stdout and stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", *argv],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def closed_port() -> int:
    """A loopback port nobody listens on (bound once, then released)."""
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        return int(placeholder.getsockname()[1])
