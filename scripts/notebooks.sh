#!/usr/bin/env bash
# Registers the healing-bert Jupyter kernel and executes the numbered notebooks headless.
#
#   bash scripts/notebooks.sh                 execute every notebooks/[0-9]*.ipynb in quick mode
#   bash scripts/notebooks.sh --install       apt-install Jupyter (if missing), register the kernel, then execute
#   bash scripts/notebooks.sh --register      only register the kernel
#   bash scripts/notebooks.sh --full          execute with the full parameters (HEALING_QUICK=0)
#   bash scripts/notebooks.sh --out DIR       keep the executed notebooks in DIR (default: a temp dir)
#   bash scripts/notebooks.sh --strip         clear outputs and execution counts of notebooks/[0-9]*.ipynb in place
#   bash scripts/notebooks.sh notebooks/00-quickstart.ipynb ...   execute only these
#
# A failing cell makes nbconvert exit non-zero; this script stops at the first failure with that status.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KERNEL_NAME="healing-bert"
# Debian's python3 has Jupyter from apt; the python3 first on PATH may be another one without it.
PYTHON="${HEALING_PYTHON:-/usr/bin/python3}"
[ -x "$PYTHON" ] || PYTHON="$(command -v python3)"
APT_PACKAGES=(jupyter-nbconvert python3-nbclient jupyter-client python3-ipykernel)

install=0 register_only=0 strip=0 quick=1 out="" notebooks=()
while [ $# -gt 0 ]; do
  case "$1" in
    --install) install=1 ;;
    --register) register_only=1 ;;
    --strip) strip=1 ;;
    --full) quick=0 ;;
    --quick) quick=1 ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "notebooks.sh: unknown option $1" >&2; exit 2 ;;
    *) notebooks+=("$1") ;;
  esac
  shift
done

apt_install() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

kernel_registered() {
  # Registered AND pointing at this checkout: a spec left by another clone (CI runs a fresh clone on a
  # machine that may have one) would silently execute that clone's code.
  # Capture first: with pipefail, grep -q closing the pipe early would fail the pipeline.
  local list dir
  list="$("$PYTHON" -m jupyter kernelspec list 2>/dev/null || true)"
  dir="$(awk -v k="$KERNEL_NAME" '$1 == k { print $2 }' <<<"$list")"
  [ -n "$dir" ] && grep -qF "\"$ROOT/notebooks/kernel/tslab-kernel.cjs\"" "$dir/kernel.json" 2>/dev/null
}

register_kernel() {
  local spec
  spec="$(mktemp -d)"
  # Absolute paths: Jupyter may start the kernel from a desktop launcher without node on PATH.
  cat >"$spec/kernel.json" <<JSON
{
  "argv": ["$(command -v node)", "$ROOT/notebooks/kernel/tslab-kernel.cjs", "kernel", "--config-path", "{connection_file}"],
  "display_name": "TypeScript (healing-bert)",
  "language": "typescript"
}
JSON
  "$PYTHON" -m jupyter kernelspec install --user --name "$KERNEL_NAME" "$spec" 2>&1 | grep -v -i debugger >&2 || true
  rm -rf "$spec"
  kernel_registered || { echo "kernel registration failed" >&2; exit 1; }
  echo "registered Jupyter kernel '$KERNEL_NAME' -> $ROOT/notebooks/kernel/tslab-kernel.cjs" >&2
}

if [ $install -eq 1 ]; then apt_install; register_kernel; fi
if [ $register_only -eq 1 ]; then register_kernel; exit 0; fi

"$PYTHON" -c 'import nbconvert, nbclient' 2>/dev/null || {
  echo "Jupyter (nbconvert, nbclient) is missing for $PYTHON: run 'bash scripts/notebooks.sh --install' (Debian) or 'pip install nbconvert nbclient ipykernel'" >&2
  exit 1
}
kernel_registered || register_kernel

if [ ${#notebooks[@]} -eq 0 ]; then
  shopt -s nullglob
  notebooks=("$ROOT"/notebooks/[0-9]*.ipynb)
fi
if [ $strip -eq 1 ]; then
  "$PYTHON" -m jupyter nbconvert --clear-output --inplace "${notebooks[@]}" 2>&1 | grep -v -i debugger >&2 || true
  exit 0
fi
[ ${#notebooks[@]} -gt 0 ] || { echo "no notebooks to run" >&2; exit 0; }

if [ -z "$out" ]; then out="$(mktemp -d)"; trap 'rm -rf "$out"' EXIT; fi
mkdir -p "$out"
export HEALING_QUICK=$quick
# Silence pydevd's frozen-modules warning that ipykernel prints on every kernel start.
export PYDEVD_DISABLE_FILE_VALIDATION=1

for nb in "${notebooks[@]}"; do
  name="$(basename "$nb")"
  start=$(date +%s.%N)
  if ! "$PYTHON" -Xfrozen_modules=off -m jupyter nbconvert --to notebook --execute \
      --ExecutePreprocessor.timeout="${HEALING_CELL_TIMEOUT:-1800}" \
      --output-dir "$out" --output "$name" "$nb" >"$out/$name.log" 2>&1; then
    cat "$out/$name.log" >&2
    echo "FAILED: $name" >&2
    exit 1
  fi
  end=$(date +%s.%N)
  awk -v n="$name" -v s="$start" -v e="$end" 'BEGIN { printf "%-40s ok  %6.1f s\n", n, e - s }'
done
