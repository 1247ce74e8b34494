#!/usr/bin/env bash
# Installs everything the project and its tests need, from PyPI (and, as features need them,
# the npm registry and Debian's packages). README.md's install command; .ci/run runs it.
set -euo pipefail
cd "$(dirname "$0")"
# The core (requirements.txt), every extra of pyproject.toml (faces, ray, onnx) and the tests'.
extras=$(python -c 'import tomllib; e = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]; print(" ".join(sorted({p for v in e.values() for p in v})))')
# (no globbing: 'ray[serve]' is a package name, not a pattern)
set -f
python -m pip install -r requirements.txt -r requirements-test.txt $extras
set +f

# The TF.js converter (build.py --tfjs) in an environment of its own: tensorflowjs 4.22 needs
# an older TensorFlow than the project's (see requirements-tfjs.txt).
if [ ! -x .venv-tfjs/bin/python ]; then
    python -m venv .venv-tfjs
fi
.venv-tfjs/bin/python -m pip install -q -r requirements-tfjs.txt

# The TF.js runtime for the Node tests (tests/test_tfjs.py), from tests/node/package-lock.json;
# --ignore-scripts: nothing is downloaded at install time beyond the npm packages.
if command -v npm > /dev/null; then
    (cd tests/node && npm ci --ignore-scripts --no-audit --no-fund)
else
    echo "install.sh: npm not found; the TF.js Node tests need Node.js 20 and npm" >&2
fi

# The web page (web/index.html): its JS runtime from the npm registry, exactly as locked in
# web/package-lock.json (--ignore-scripts: no install script downloads anything).
if command -v npm > /dev/null; then
    (cd web && npm ci --ignore-scripts --no-audit --no-fund)
else
    echo "install.sh: npm not found; the web page and its tests need Node.js 20 and npm" >&2
fi

# The browser tests (tests/test_web.py) drive Debian's Chromium; as root (CI) it is installed
# when missing, otherwise they skip and say why.
if { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; } && [ "$(id -u)" = 0 ] \
    && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
fi
