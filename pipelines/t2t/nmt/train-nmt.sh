#!/bin/sh
# Generate the data if it is not there yet, then train; every setting can be overridden with -e NAME=value.
set -eu
if [ ! -e "${DATA_DIR}/.generated" ]; then
  t2t-datagen --data_dir="${DATA_DIR}" --tmp_dir=/tmp/t2t --problem="${PROBLEM}"
  touch "${DATA_DIR}/.generated"
fi
exec t2t-trainer --data_dir="${DATA_DIR}" --problem="${PROBLEM}" --model="${MODEL}" \
  --hparams_set="${HPARAMS}" --output_dir="${OUTPUT_DIR}" "$@"
