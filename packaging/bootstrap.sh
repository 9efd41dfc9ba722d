#!/usr/bin/env bash
# Installs what is missing for EmoDesk on Debian: system packages, a .venv, the
# package with its dev dependencies. Quick and silent when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv

want=()
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  want+=("$pkg")
done < packaging/debian-packages.txt

# Debian's own python3 needs its venv and header packages; a pyenv build has both.
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  want+=(python3-venv)
fi
if [ ! -f "$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("include"))')/Python.h" ]; then
  want+=(python3-dev)
fi

missing=()
for pkg in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "bootstrap: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

# Reinstall only when the declared dependencies change.
stamp="$VENV/.emodesk-installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "bootstrap: installing emodesk and its dev dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[dev]'
  rm -f "$VENV"/.emodesk-installed-*
  touch "$stamp"
fi
