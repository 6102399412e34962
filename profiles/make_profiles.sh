#!/usr/bin/env bash
# How the shipped profiles were made: measure on this machine's local targets, then fit.
#   local-lambda at 512, 1024, 1769 and 3008 MB (CPU share memory/1769 vCPU by cgroup quota);
#   local-server with 1 and 2 gunicorn workers held to 2 vCPUs, standing for a c6i.large.
# Usage: bash profiles/make_profiles.sh [model ...]   (from the repository root, after `make test` set-up)
set -euo pipefail
cd "$(dirname "$0")/.."
S=.venv/bin/servesim
M=${MEASUREMENTS:-profiles/measurements}
SIZES="--cold 10 --warm 300 --levels 1,2,4,8 --level-s 4 --no-progress"
for model in "${@:-mobilenetv2 cifar10-cnn minilm}"; do
  for m in $model; do
    $S calibrate local-lambda --model "$m" --memory-mb 512,1024,1769,3008 --out "$M/$m-lambda.parquet" $SIZES --resume
    $S calibrate local-server --model "$m" --workers 1,2 --cpus 2 --instance-type c6i.large \
       --out "$M/$m-server.parquet" $SIZES --resume
    $S fit "$M/$m-lambda.parquet" "$M/$m-server.parquet" --out "profiles/$m.json" --plots "$M/plots-$m"
  done
done
