#!/usr/bin/env bash
# Installs everything the project and its tests need, from PyPI (and, as features need them,
# the npm registry and Debian's packages). README.md's install command; .ci/run runs it.
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install -r requirements.txt -r requirements-test.txt
