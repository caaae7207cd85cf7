#!/usr/bin/env bash
# Re-execute the course notebooks in place, so the outputs stored in them (what GitHub
# shows, and what nbval compares against in `make test`) are current.
#
#   scripts/run-notebooks.sh                       every notebooks/NN-*.ipynb
#   scripts/run-notebooks.sh notebooks/03-*.ipynb  just these
#
# Run it as root after changing a notebook or anything a notebook shows, then commit the
# notebooks. `make test` fails on a notebook whose stored outputs differ from a fresh run
# (nbval) or that was saved with an error or unexecuted cells (tests/test_notebooks_saved.py).
# The widgets' state is saved in the notebook's metadata (store_widget_state), so a notebook
# opened without running it shows its widgets as they were at the end of the run (JupyterLab,
# nbviewer) rather than their text form `VBox(...)`; nbval does not compare widget views.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "run-notebooks.sh: run me as root (the notebooks make namespaces and mounts)" >&2
  exit 1
fi
[ -x .venv/bin/python ] || EXTRAS=test,lab ./scripts/setup.sh
PY="$PWD/.venv/bin/python"

# The kernelspec trap: the `python3` kernelspec that pip installs runs plain `python`, found
# on PATH, which as root (sudo, pyenv, ...) is often another interpreter without our packages.
# Use a private kernelspec that names this venv's interpreter, first on JUPYTER_PATH.
kdir=$(mktemp -d)
trap 'rm -rf "$kdir"' EXIT
mkdir -p "$kdir/kernels/python3"
cat > "$kdir/kernels/python3/kernel.json" <<EOF
{"argv": ["$PY", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
 "display_name": "Python 3 (ipykernel)", "language": "python"}
EOF
export JUPYTER_PATH="$kdir${JUPYTER_PATH:+:$JUPYTER_PATH}"
export PATH="$PWD/.venv/bin:$PATH"

if [ $# -eq 0 ]; then
  set -- notebooks/[0-9][0-9]-*.ipynb
fi
status=0
for nb in "$@"; do
  start=$(date +%s%N)
  if "$PY" -m jupyter nbconvert --to notebook --execute --inplace \
       --ExecutePreprocessor.kernel_name=python3 \
       --ExecutePreprocessor.timeout=120 \
       --ExecutePreprocessor.record_timing=False \
       --ExecutePreprocessor.store_widget_state=True \
       --log-level=WARN "$nb"; then
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    printf '%-45s %3d.%01d s\n' "$nb" $((ms / 1000)) $((ms % 1000 / 100))
  else
    echo "FAILED: $nb (its stored outputs were not changed)" >&2
    status=1
  fi
done
# the same checks `make test` makes on the saved files
"$PY" -m pytest -q -p no:cacheprovider tests/test_notebooks_saved.py
exit $status
