"""Timing one whole process: wall and CPU time, and the peak memory of its process tree.

`measure()` starts the command in a new session, reaps it with `os.wait4` (the child's own
rusage: CPU time of it and its waited-for descendants, and the largest single-process
max RSS among them — never below this process's own size at the fork, which Linux carries
into the child, so the harness keeps itself small) and, meanwhile, samples `/proc` every
`interval` seconds for the sum of the resident memory of every process in the session (the
refresh starts Prefect's temporary server as a second process, so the tree is what must fit
in memory). The peak reported is the larger of the two. Sampling can miss a spike shorter
than the interval; the single-process max RSS cannot.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


def session_processes(sid: int) -> list[int]:
    """Every live process whose session id is `sid` (the child and all its descendants)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2:].split()
        # after the command: state ppid pgrp session ...
        if int(fields[3]) == sid:
            found.append(int(entry))
    return found


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


class TreeSampler(threading.Thread):
    def __init__(self, sid: int, interval: float):
        super().__init__(daemon=True)
        self.sid, self.interval = sid, interval
        self.peak_bytes = 0
        self.peak_processes = 0
        self.samples = 0
        self.timeline: list[tuple[float, float]] = []  # (seconds since start, tree MiB)
        self._halt = threading.Event()
        self._t0 = time.perf_counter()

    def run(self) -> None:
        while not self._halt.is_set():
            pids = session_processes(self.sid)
            total = sum(rss_bytes(p) for p in pids)
            self.timeline.append((time.perf_counter() - self._t0, total / 2**20))
            self.samples += 1
            if total > self.peak_bytes:
                self.peak_bytes = total
            self.peak_processes = max(self.peak_processes, len(pids))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def downsample(timeline: list[tuple[float, float]], points: int = 400) -> list[list[float]]:
    """At most `points` (seconds, MiB) pairs, keeping the highest value of each bucket."""
    if len(timeline) <= points:
        return [[round(t, 2), round(m, 1)] for t, m in timeline]
    size = len(timeline) / points
    out = []
    for i in range(points):
        bucket = timeline[int(i * size):int((i + 1) * size)] or [timeline[-1]]
        t, m = max(bucket, key=lambda tm: tm[1])
        out.append([round(t, 2), round(m, 1)])
    return out


def measure(cmd: list[str], *, env: dict[str, str], cwd: Path, log_base: Path,
            timeout: float, interval: float = 0.25) -> dict:
    """Run `cmd` to completion; stdout/stderr go to `log_base`.out / .err."""
    log_base.parent.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_base.with_suffix(".out"), log_base.with_suffix(".err")
    load_before = os.getloadavg()[0]
    parent_rss = rss_bytes(os.getpid()) / 2**20
    timed_out = threading.Event()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err,
                                start_new_session=True)
        sampler = TreeSampler(proc.pid, interval)
        sampler.start()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
    # Anything of the child's session still alive (an orphaned server) is ours to end.
    leftovers = session_processes(proc.pid)
    if leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    max_single = usage.ru_maxrss / 1024  # KiB -> MiB
    tree = sampler.peak_bytes / 2**20
    return {
        "exit_code": proc.returncode,
        "timed_out": timed_out.is_set(),
        "wall_s": wall,
        "cpu_user_s": usage.ru_utime,
        "cpu_sys_s": usage.ru_stime,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        # Linux carries the parent's size at the fork into the child's max RSS: a value
        # near `parent_rss_mb` means the child itself stayed below it
        "max_single_rss_mb": round(max_single, 1),
        "parent_rss_mb": round(parent_rss, 1),
        "peak_tree_rss_mb": round(tree, 1),
        "peak_rss_mb": round(max(max_single, tree), 1),
        "peak_processes": sampler.peak_processes,
        "rss_samples": sampler.samples,
        "rss_timeline": downsample(sampler.timeline),
        "loadavg_1m_before": round(load_before, 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
        "leftover_processes": len(leftovers),
        "stdout": str(out_path),
        "stderr": str(err_path),
    }


def last_summary(out_path: Path) -> dict | None:
    """The JSON a child printed on its `BENCH_SUMMARY ` line, if any."""
    import json

    from benchmarks._summary import PREFIX

    summary = None
    with contextlib.suppress(OSError):
        for line in Path(out_path).read_text(errors="replace").splitlines():
            if line.startswith(PREFIX):
                summary = json.loads(line[len(PREFIX):])
    return summary
