"""What machine and which code a report describes."""

from __future__ import annotations

import subprocess
from pathlib import Path


def sh(argv: list[str], cwd: Path | None = None) -> str:
    """A command's trimmed standard output; "" when it cannot run."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=30,
                              check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def memory_gib() -> float | None:
    """Total memory in GiB, from /proc/meminfo."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return None


def git_commit(root: Path) -> str:
    """The short commit of `root`, marked when tracked files have uncommitted changes."""
    commit = sh(["git", "rev-parse", "--short=12", "HEAD"], cwd=root) or "?"
    if sh(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root):
        commit += " (with uncommitted changes)"
    return commit
