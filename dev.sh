#!/bin/sh
# Sets up .venv (once, and again whenever pyproject.toml changes), then runs the service or the tests.
#   ./dev.sh serve [--host H] [--port P]   start trainwreck on the embedded SQLite store
#   ./dev.sh test  [pytest args]           lint, type-check and run the whole test suite
set -eu
cd "$(dirname "$0")"
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
stamp=".venv/.installed-$(cksum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[dev]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi
command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
    serve)
        exec .venv/bin/trainwreck serve "$@"
        ;;
    test)
        .venv/bin/ruff check app tests bench corpus
        .venv/bin/mypy
        exec .venv/bin/pytest "$@"
        ;;
    *)
        echo "usage: ./dev.sh serve [--host H] [--port P] | ./dev.sh test [pytest args]" >&2
        exit 2
        ;;
esac
