#!/usr/bin/env bash
# One entry point for a fresh machine with only Python 3.11 and git:
#   bash deploy/bootstrap.sh demo [DIR]   set up .venv, run the demo end to end (DIR=./demo)
#   bash deploy/bootstrap.sh test [ARGS]  set up .venv and the test tools, run the full suite
#   bash deploy/bootstrap.sh upgrade [ARGS]  try `uv lock --upgrade` in a scratch copy and run
#                                         the checks there (deploy/upgrade_check.py --help)
# uv comes from PyPI into .tools/ when it is not on the PATH; the lock file pins the rest.
set -euo pipefail
cd "$(dirname "$0")/.."

python=""
for candidate in "${PYTHON:-}" python3.11 python3; do
  if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 \
     && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    python=$(command -v "$candidate"); break
  fi
done
[ -n "$python" ] || { echo "error: Python 3.11 is needed (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

if command -v uv >/dev/null 2>&1; then
  uv=$(command -v uv)
else
  uv=.tools/uv/bin/uv
  if [ ! -x "$uv" ]; then
    echo "installing uv into .tools/uv" >&2
    "$python" -m venv .tools/uv
    .tools/uv/bin/python -m pip install --quiet uv==0.13.9
  fi
fi

export UV_PYTHON_DOWNLOADS=never DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
"$uv" sync --frozen --python "$python" --quiet

need_chromium() {
  # Page tests render the study report and docs sites in a real headless browser.
  command -v chromium >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (Debian package) for the page tests" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: chromium is not installed; page tests will be skipped" >&2
  fi
}

command=${1:-}
shift || true
case "$command" in
  demo)
    exec .venv/bin/ivig demo --dir "${1:-demo}" ;;
  test)
    need_chromium
    exec .venv/bin/pytest "$@" ;;
  upgrade)
    need_chromium
    UV="$uv" exec .venv/bin/python deploy/upgrade_check.py "$@" ;;
  *)
    echo "usage: bash deploy/bootstrap.sh demo [DIR] | test [PYTEST ARGS] | upgrade [ARGS]" >&2
    exit 2 ;;
esac
