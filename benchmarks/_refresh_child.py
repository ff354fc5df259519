"""One refresh as a whole process, the way `ivig refresh` runs it, for the benchmark harness.

Usage: python -m benchmarks._refresh_child INBOX WAREHOUSE SUMMARY_JSON

This mirrors `ivig_platform.cli.run_refresh` step for step (the no-change fast path before
Prefect is imported, then `cli.prepare_refresh` — Prefect settings, the temporary server
launched early, the flow imported — then the `refresh` flow with the plain progress
listener), with timestamps between the steps. The CLI prints one line and
exits; this prints the flow's returned summary dict (with its per-stage `timings`) as
JSON on its last line, prefixed with `BENCH_SUMMARY `, and writes it to SUMMARY_JSON.

The environment (IVIG_PSEUDONYM_KEY, no PREFECT_API_URL) comes from the harness. Nothing
from Prefect is imported before `prepare_refresh` has set PREFECT_HOME, exactly as
in the CLI, so the child never touches anyone's own Prefect profile.
"""

from __future__ import annotations

import sys
import time

from benchmarks._summary import write_summary

T0 = time.perf_counter()
WALL0 = time.time()


def _since() -> float:
    return round(time.perf_counter() - T0, 4)


def main(argv: list[str]) -> int:
    from pathlib import Path

    inbox, warehouse, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    marks: dict[str, float] = {"python_started": 0.0}

    # --- what `ivig refresh` imports at start-up (typer, the CLI module) ---------------
    from ivig_platform import cli
    from ivig_platform.landing.pseudonym import key_fingerprint, load_key
    from ivig_platform.progress import set_listener
    from ivig_platform.warehouse.publish import published_path
    from ivig_platform.warehouse.state import current_state, is_unchanged

    marks["cli_imported"] = _since()

    # --- run_refresh: the no-change fast path, before Prefect starts --------------------
    # `ivig refresh` passes its float option: the recorded state spells it "0.0", and an
    # int 0 ("0") would never match it
    settle_seconds = 0.0
    key = load_key()
    state = current_state(inbox, key_fingerprint(key), settle_seconds)
    marks["state_fingerprinted"] = _since()
    result: dict
    if is_unchanged(warehouse, state):
        result = {"unchanged": True, "published": str(published_path(warehouse))}
        marks["refresh_returned"] = _since()
    else:
        refresh = cli.prepare_refresh(warehouse)

        marks["flow_imported"] = _since()
        first_event: list[float] = []

        def listener(event) -> None:  # the CLI's plain (non-tty) display, timestamped
            if not first_event:
                first_event.append(_since())
            where = "refresh" if event.site_id == "*" else f"{event.site_id}/{event.delivery_id}"
            print(f"[+{_since():8.2f}s] [{where}] {event.stage} {event.detail}".rstrip(),
                  flush=True)

        set_listener(listener)
        try:
            marks["flow_called"] = _since()
            result = refresh(inbox=str(inbox.resolve()), warehouse=str(warehouse.resolve()),
                             settle_seconds=settle_seconds, force=False)
            marks["refresh_returned"] = _since()
        finally:
            set_listener(None)
        if first_event:
            marks["first_flow_event"] = first_event[0]
    result = dict(result)
    result["bench_marks"] = marks
    result["bench_wall_started"] = WALL0
    write_summary(out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
