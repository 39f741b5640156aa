#!/usr/bin/env bash
# The package as users deploy it (issue 28): editable installs hide a package or data file
# missing from the wheel, so this check builds the sdist and the wheel, replays the
# Dockerfile's pip/uv lines natively into a fresh virtualenv (the lock, then the project
# installed from a copy of the build context, not -e), checks that the install holds what
# `uv build` produced, and runs the installed package from a folder that is not the checkout:
# every module imports, `driftloop --help` and `driftloop config check` answer, gunicorn serves
# /health and one /predict, every DAG file parses and `airflow plugins` loads the plugin.
#
#   ci/wheel_check.sh            (from anywhere; needs the checkout's .venv for `uv build`)
#
# Runs in 1.5 to 2.7 minutes on a warm uv cache (2 shared cores); .ci/run calls it last.
set -euo pipefail
checkout=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3.11}
work=$(mktemp -d "${TMPDIR:-/tmp}/driftloop-wheel-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$SECONDS
log() { printf '== wheel check [%3ds]: %s\n' $((SECONDS - started)) "$*"; }

log "building the sdist and the wheel (the wheel from the sdist)"
"$checkout/.venv/bin/uv" build --quiet --sdist --wheel -o "$work/dist" "$checkout"
wheel=$(ls "$work"/dist/driftloop-*.whl)

# The Docker build context: the checkout's files minus .dockerignore's (git's view of them:
# tracked and untracked-but-not-ignored files, which is what a clean clone plus work has).
log "copying the build context as the Dockerfile's COPY does"
mkdir -p "$work/image"
(cd "$checkout" && git ls-files -z --cached --others --exclude-standard \
  | tar --null --ignore-failed-read -T - -cf -) 2>/dev/null | tar -xf - -C "$work/image"

log "replaying the Dockerfile's pip/uv lines into a fresh virtualenv"
"$python" -m venv "$work/venv"
venv_python="$work/venv/bin/python"
# Each RUN line's pip/uv commands, with the image's system interpreter replaced by the venv's.
# Any other command of those lines (apt-get, useradd, mkdir, test) is not replayed.
"$venv_python" "$checkout/ci/dockerfile_installs.py" "$checkout/Dockerfile" "$venv_python" \
  > "$work/installs.sh"
cat "$work/installs.sh"
if ! (cd "$work/image" && PATH="$work/venv/bin:$PATH" bash -euo pipefail "$work/installs.sh") \
  >"$work/installs.log" 2>&1; then
  tail -n 40 "$work/installs.log"
  exit 1
fi

log "checking the installed package against the wheel, from outside the checkout"
mkdir -p "$work/run"
cd "$work/run"
env -u PYTHONPATH -u VIRTUAL_ENV PATH="$work/venv/bin:$PATH" \
  "$venv_python" "$checkout/ci/wheel_check.py" \
  --wheel "$wheel" --checkout "$checkout" --project "$work/image" --work "$work/run"
log "ok"
