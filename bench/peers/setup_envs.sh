#!/usr/bin/env bash
# Create the two Python environments the peers' converters need, outside elman's own:
#   DIR/nnom     TensorFlow 2.14 (NNoM's scripts use the Keras 2 API of tf.keras)
#   DIR/keras2c  keras2c 2.0 from PyPI, pydantic<2 (it needs the v1 API), TensorFlow 2.14
# Usage: bench/peers/setup_envs.sh [DIR]   (default: ~/.cache/elman/peers/envs)
# Needs python3.11 (TensorFlow 2.14 has no wheels for newer Pythons) and ~3 GB of disk.
set -euo pipefail
dir="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/elman/peers/envs}"
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null || { echo "error: $py not found (TensorFlow 2.14 needs Python <= 3.11)" >&2; exit 1; }
mkdir -p "$dir"

make_env() {  # name, packages...
  local name="$1"; shift
  if [ -x "$dir/$name/bin/python" ] && [ -f "$dir/$name/.complete" ]; then
    echo "$dir/$name: already there"; return
  fi
  rm -rf "$dir/$name"
  echo "creating $dir/$name: $*"
  "$py" -m venv "$dir/$name"
  "$dir/$name/bin/python" -m pip install -q --upgrade pip
  "$dir/$name/bin/python" -m pip install -q "$@"
  touch "$dir/$name/.complete"
}

make_env nnom "tensorflow-cpu==2.14.1" "numpy<2" scipy scikit-learn matplotlib
make_env keras2c "keras2c==2.0" "pydantic<2" "tensorflow-cpu==2.14.1" "numpy<2"
echo "done: run bench/peers/run.py with --envs $dir"
