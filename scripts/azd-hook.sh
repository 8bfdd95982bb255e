#!/bin/sh
# Runs one step of scripts/azd_hooks.py for azd (azure.yaml hooks), in a virtual environment of
# its own under .azure/ so the hook needs only Python 3.10+ on the machine running azd.
set -eu
cd "$(dirname "$0")/.."
python=""
for candidate in python3.13 python3.12 python3.11 python3.10 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    python="$candidate"; break
  fi
done
if [ -z "$python" ]; then
  echo "azd hook: Python 3.10 or newer is needed to run scripts/azd_hooks.py" >&2
  exit 1
fi
venv=.azure/hooks-venv
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q -r requirements-azd-hooks.txt
fi
exec "$venv/bin/python" scripts/azd_hooks.py "$@"
