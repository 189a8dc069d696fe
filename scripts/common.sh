# Sourced by the scripts in this folder: paths, privilege, and the mpirun flags
# every launch on a small machine needs.
set -euo pipefail
LTX_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LTX_BUILD_DIR="${LTX_BUILD_DIR:-$LTX_ROOT/build}"
LTX_SHARED_DIR="${LTX_SHARED_DIR:-$(cd "$LTX_ROOT/.." && pwd)/shared}"

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

# Open MPI refuses root without these; --oversubscribe lets N ranks share fewer
# cores; vader without cross-memory-attach works inside containers.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
LTX_MPIRUN_FLAGS=(--oversubscribe --bind-to none --mca btl self,vader
                  --mca btl_vader_single_copy_mechanism none)

log() { printf '\033[1m[%s]\033[0m %s\n' "$(basename "$0")" "$*"; }
