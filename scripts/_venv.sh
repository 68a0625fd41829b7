# shellcheck shell=bash
# Sourced by scripts/serve, scripts/test and .ci/run: `venv_ready FILE` makes ./.venv hold FILE's
# pins and puts .venv/bin first on PATH. It installs only when a requirements file has changed.

venv_ready() {
    local requirements="$1"
    local root venv python stamp want
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    venv="$root/.venv"
    python="${PYTHON:-python3}"

    if [[ ! -x "$venv/bin/python" ]]; then
        if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "error: Python 3.11 or newer is needed as '$python' (set PYTHON=/path/to/python3.11)" >&2
            return 1
        fi
        echo "Creating $venv ..." >&2
        # Debian's own python3 needs the python3-venv package for this.
        "$python" -m venv "$venv" || {
            echo "error: '$python -m venv' failed; on Debian or Ubuntu: apt-get install python3-venv" >&2
            return 1
        }
    fi

    # Every requirements file counts: requirements-dev.txt includes requirements.txt.
    stamp="$venv/.installed-$(basename "$requirements").sha256"
    want="$(cat "$root"/requirements*.txt | sha256sum | cut -d' ' -f1)"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        echo "Installing $requirements into .venv (the first time takes a minute or two) ..." >&2
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/$requirements"
        echo "$want" >"$stamp"
    fi

    export VIRTUAL_ENV="$venv"
    export PATH="$venv/bin:$PATH"
}
