#!/usr/bin/env bash
# Installs what this project needs on a Debian/Ubuntu machine, and nothing twice.
#   scripts/bootstrap.sh demo   - what `make demo` / `make run` need (ODBC + SQLite driver, venv, Azurite)
#   scripts/bootstrap.sh test   - plus PostgreSQL, its ODBC driver, exiftool, ImageMagick and libvips-tools (vipsthumbnail) for tests and benchmarks
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-demo}"
AZURITE_VERSION=3.35.0   # the newest Azurite that runs on Node 20

say() { printf '==> %s\n' "$*"; }

# libltdl7, libkrb5-3, libgssapi-krb5-2: the OS libraries of the SQL Server driver that mssql-python bundles
# (its README, "Linux" install notes).
packages=(unixodbc libsqliteodbc python3-venv libltdl7 libkrb5-3 libgssapi-krb5-2)
if [ "$profile" = test ]; then
  packages+=(odbc-postgresql postgresql libimage-exiftool-perl imagemagick libvips-tools)
fi
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "This set-up script knows Debian and Ubuntu. On another system install these yourself:" >&2
  echo "  - Python 3.13 with venv; Node.js 20 and npm" >&2
  echo "  - unixODBC and the SQLite3 ODBC driver (macOS: 'brew install unixodbc sqliteodbc')" >&2
  [ "$profile" = test ] && echo "  - PostgreSQL + psqlODBC, exiftool, ImageMagick, libvips-tools (tests and benchmarks)" >&2
  echo "then run: python3.13 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt" >&2
  echo "      and: npm install --prefix .tools azurite@$AZURITE_VERSION" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "Missing Debian packages: ${missing[*]}. Install them as root: apt-get install ${missing[*]}" >&2
      exit 1
    fi
  fi
  say "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
odbcinst -q -d -n SQLite3 >/dev/null 2>&1 || {
  echo "The SQLite3 ODBC driver is not registered in /etc/odbcinst.ini; reinstall libsqliteodbc." >&2; exit 1; }

# Python 3.13: the version Azure runs this app on (Flex Consumption), through azure-functions-runtime-v1.
find_python() {
  local cand
  for cand in "${PYTHON:-}" python3.13; do
    [ -n "$cand" ] && "$cand" -c 'import sys, venv; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1 \
      && { command -v "$cand"; return 0; }
  done
  if command -v pyenv >/dev/null 2>&1; then   # pyenv keeps 3.13 without putting it on PATH
    cand=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.13\.[0-9]+$' | sort -V | tail -n 1)
    [ -n "$cand" ] && PYENV_VERSION="$cand" pyenv which python3.13 2>/dev/null && return 0
  fi
  return 1
}
if ! py=$(find_python); then
  echo "Python 3.13 is needed (Azure Functions runs this app on 3.13) and was not found." >&2
  echo "Install it, e.g. 'uv python install 3.13', 'pyenv install 3.13', or your distribution's" >&2
  echo "python3.13 + python3.13-venv packages (Ubuntu: the deadsnakes PPA); or set PYTHON=/path/to/python3.13." >&2
  exit 1
fi
stamp=.venv/.requirements-$( (cat requirements.txt requirements-dev.txt; "$py" -V) | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  say "creating .venv ($("$py" -V)) and installing Python packages"
  rm -rf .venv
  "$py" -m venv .venv
  quiet_pip() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
  quiet_pip .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  quiet_pip .venv/bin/python -m pip install -q -r requirements-dev.txt
  rm -f .venv/.requirements-* && touch "$stamp"
fi

if [ ! -x .tools/node_modules/.bin/azurite-blob ] || \
   [ "$(node -p "require('./.tools/node_modules/azurite/package.json').version" 2>/dev/null)" != "$AZURITE_VERSION" ]; then
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 18 ]; then
    echo "Node.js $major is too old for Azurite $AZURITE_VERSION; install Node.js 20." >&2; exit 1
  fi
  say "installing azurite@$AZURITE_VERSION into .tools/"
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --silent "azurite@$AZURITE_VERSION" >/dev/null
fi
