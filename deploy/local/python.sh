#!/usr/bin/env bash
# A Python virtualenv with requirements.txt, kept per user and per requirements hash so every
# clone reuses it; linked into the clone as .cache/venv.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
root="$(cd "$here/../.." && pwd)"
hash=$(cat "$root/requirements.txt" "$root/requirements-runtime.txt" | sha256sum | cut -c1-12)
venv="$GRIDLINK_HOME/venv-$hash"
mkdir -p "$GRIDLINK_HOME" "$root/.cache"
(
  flock 9
  if [ ! -f "$venv/.complete" ]; then
    echo "[python] creating $venv from requirements.txt"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet -r "$root/requirements.txt"
    touch "$venv/.complete"
  else
    echo "[python] $venv is up to date"
  fi
) 9>"$GRIDLINK_HOME/.python.lock"
ln -sfn "$venv" "$root/.cache/venv"
