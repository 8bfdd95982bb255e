#!/usr/bin/env bash
# Installs what this project needs on a Debian/Ubuntu machine, and nothing twice.
#   scripts/bootstrap.sh demo   - what `make demo` / `make run` need (ODBC + SQLite driver, venv, Azurite)
#   scripts/bootstrap.sh test   - plus PostgreSQL, its ODBC driver, exiftool and ImageMagick for the tests
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-demo}"
AZURITE_VERSION=3.35.0   # the newest Azurite that runs on Node 20

say() { printf '==> %s\n' "$*"; }

packages=(unixodbc libsqliteodbc python3-venv)
if [ "$profile" = test ]; then
  packages+=(odbc-postgresql postgresql libimage-exiftool-perl imagemagick)
fi
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "This set-up script knows Debian and Ubuntu. On another system install these yourself:" >&2
  echo "  - Python 3.11+ with venv; Node.js 20 and npm" >&2
  echo "  - unixODBC and the SQLite3 ODBC driver (macOS: 'brew install unixodbc sqliteodbc')" >&2
  [ "$profile" = test ] && echo "  - PostgreSQL + psqlODBC, exiftool, ImageMagick (tests only)" >&2
  echo "then run: python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt" >&2
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

stamp=.venv/.requirements-$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  say "creating .venv and installing Python packages"
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -r requirements-dev.txt
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
