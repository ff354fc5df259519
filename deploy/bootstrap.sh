#!/usr/bin/env bash
# One entry point for a fresh machine with only Python 3.11 and git:
#   bash deploy/bootstrap.sh setup        set up .venv only (what a deployment needs)
#   bash deploy/bootstrap.sh demo [DIR]   set up .venv, run the demo end to end (DIR=./demo)
#   bash deploy/bootstrap.sh test [ARGS]  set up .venv and the test tools, run the full suite
#   bash deploy/bootstrap.sh upgrade [ARGS]  try `uv lock --upgrade` in a scratch copy and run
#                                         the checks there (deploy/upgrade_check.py --help)
# uv comes from PyPI into .tools/ when it is not on the PATH; the lock file pins the rest.
# Each step says what it does before it starts (on stderr), so nothing is silent for long.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "bootstrap: $*" >&2; }
usage="usage: bash deploy/bootstrap.sh setup | demo [DIR] | test [PYTEST ARGS] | upgrade [ARGS]"
command=${1:-}
shift || true
case "$command" in
  setup|demo|test|upgrade) ;;
  *) echo "$usage" >&2; exit 2 ;;
esac

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
    say "installing uv (uv==0.13.9, from PyPI) into .tools/uv: it builds .venv from uv.lock"
    "$python" -m venv .tools/uv
    .tools/uv/bin/python -m pip install --quiet uv==0.13.9
  fi
fi

export UV_PYTHON_DOWNLOADS=never DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
say "setting up .venv/ from uv.lock with $python (uv sync; the first time downloads the pinned packages)"
"$uv" sync --frozen --python "$python" --quiet
say ".venv/ is ready: .venv/bin/ivig, .venv/bin/prefect, .venv/bin/pytest"

need_package() {
  # need_package PACKAGE PRESENT WHY: apt-get install PACKAGE (as root, where apt-get is)
  # unless the shell test PRESENT holds; WHY says which tests need it, or that they skip.
  local package=$1 present=$2 why=$3
  eval "$present" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing $package with apt-get (the Debian package, a few minutes): $why"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq "$package" >/dev/null
    say "$package installed"
  else
    say "warning: $package is not installed; the tests that need it will be skipped ($why)"
  fi
}

need_chromium() {
  need_package chromium "command -v chromium" \
    "the page tests render the study report and the docs sites in a real headless browser"
}

need_postgresql() {
  # tests/postgres_cluster.py: initdb in a temporary folder, a free loopback port
  need_package postgresql "ls /usr/lib/postgresql/*/bin/initdb || command -v initdb" \
    "the server deployment test runs Prefect's server, and the lake tests their DuckLake catalog, on a throw-away PostgreSQL cluster"
}

case "$command" in
  setup)
    say "done; activate with: source .venv/bin/activate" ;;
  demo)
    exec .venv/bin/ivig demo --dir "${1:-demo}" ;;
  test)
    need_chromium
    need_postgresql
    say "running pytest $* (the full suite: about 35 min on two cores; its progress" \
        "follows once the tests are collected)"
    exec .venv/bin/pytest "$@" ;;
  upgrade)
    need_chromium
    UV="$uv" exec .venv/bin/python deploy/upgrade_check.py "$@" ;;
esac
