#!/usr/bin/env bash
# The journeys of a user who installed edgenas as a wheel (`pip install edgenas`), not from a
# checkout: build the wheel, install it into a fresh virtual environment outside the
# checkout, and run every journey from an empty folder, so that nothing can be read from
# the repository by accident (descriptors, the default ground truth, the agent).
#
#   scripts/wheel-journey.sh [WORK_DIR]      (default: a new temporary folder)
#
# The heavy dependencies come from the same pins as the README's set-up. Minutes: the
# table is profiled under a one-minute budget and the main job runs with small settings.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
if [ -n "${1:-}" ]; then
  work="$1"   # the caller's folder: kept, to be looked into
else
  # a folder of our own holds a 6 GB environment: removed however the journey ends
  work="$(mktemp -d -t edgenas-wheel-XXXXXX)"
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
python="${PYTHON:-python3}"

step() { printf '\n== %s\n' "$*"; }

step "build the wheel"
rm -rf "$work/dist"
"$python" -m pip wheel --no-deps -q -w "$work/dist" "$repo"
wheel=("$work"/dist/edgenas-*.whl)

step "install it into a fresh virtual environment ($work/venv)"
rm -rf "$work/venv"
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q torch==2.14.1 torchvision==0.29.1 "${wheel[0]}"
edgenas="$work/venv/bin/edgenas"

user="$work/user"   # an empty folder: no devices/, profiles/ or benchmarks/ beside it
rm -rf "$user" && mkdir -p "$user" && cd "$user"
if "$work/venv/bin/python" -c 'import edgenas, sys; sys.exit(edgenas.__file__.startswith(sys.argv[1]))' "$repo"; then
  :
else
  echo "edgenas was imported from the checkout, not from the wheel" >&2; exit 1
fi

step "devices (the shipped descriptors)"
"$edgenas" devices | tee devices.txt
grep -q '^host-cpu ' devices.txt

step "arch sample, estimate (the shipped ground truth)"
"$edgenas" arch sample --space cifar --seed 7 > a.json
"$edgenas" estimate a.json

step "profile host-cpu within a minute"
"$edgenas" profile host-cpu --space cifar --time-budget 1 --validate 10
test -f profiles/host-cpu/cifar.json

step "search on that table"
"$edgenas" search --device host-cpu --trials 60 --population 20 --out runs/search
"$edgenas" pareto runs/search

step "export and deploy the knee"
"$edgenas" export runs/search --pick knee --formats onnx --out bundles/knee
"$edgenas" deploy bundles/knee --device host-cpu --rounds 2

step "the main job with small settings"
"$edgenas" run --train-budget 10 --train-epochs 1 --train-warmup-epochs 0 --data-limit 200 \
  --trials 40 --population 10 --baselines none --out runs/main
test -f runs/main/summary.json

step "the wheel's journeys passed in ${SECONDS} s ($work)"
