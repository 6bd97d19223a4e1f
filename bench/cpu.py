"""CPU seconds spent by a group of processes, from /proc (Linux): a process tree's own time, its
reaped children's (`cutime`, `cstime`) and its live descendants'. Sampled before and after a
measurement, the difference is what the tree spent on it, exited workers and backends included."""

import os
from collections.abc import Iterable

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, list[str]] | None:
    """The parent pid and the fields after the command name, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def matching(pattern: str) -> list[int]:
    """The roots of the process trees whose command line contains `pattern`: the matching
    processes whose parent does not match."""
    found = {pid for pid in _pids() if pattern in _cmdline(pid)} - {os.getpid()}
    roots = []
    for pid in found:
        stat = _stat(pid)
        if stat is not None and stat[0] not in found:
            roots.append(pid)
    return roots


def tree_seconds(roots: Iterable[int]) -> float:
    """CPU seconds of the trees under `roots` so far."""
    roots = set(roots)
    parents: dict[int, int] = {}
    fields: dict[int, list[str]] = {}
    for pid in _pids():
        stat = _stat(pid)
        if stat is not None:
            parents[pid], fields[pid] = stat
    total = 0
    for pid, values in fields.items():
        ancestor, own = pid, True
        while ancestor not in roots:
            ancestor = parents.get(ancestor, 0)
            if ancestor <= 1:
                own = False
                break
        if own:
            # utime, stime (fields 14, 15 of stat; 12, 13 after the name); a root also counts its
            # reaped children (cutime, cstime), whose own entries are gone.
            total += int(values[11]) + int(values[12])
            if pid in roots:
                total += int(values[13]) + int(values[14])
    return total / _TICKS


def postmaster(data_directory: str) -> int:
    """PostgreSQL's main process, from its data directory's postmaster.pid."""
    with open(os.path.join(data_directory, "postmaster.pid")) as f:
        return int(f.readline())
