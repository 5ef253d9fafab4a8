#!/usr/bin/env bash
# Prepares a Debian 12 machine for strata: system packages for the build, the tests (a private
# dockerd 20.10 to compare with, skopeo, umoci, busybox-static for the base image) and the
# benchmark; then the npm dependencies and the build (native addon via node-gyp, then tsc).
# Idempotent: packages already installed are not fetched again; safe to run repeatedly.
#
#   bash scripts/setup.sh            (as root, or with sudo available)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
    echo "setup.sh: needs root (or sudo) to install system packages" >&2
    exit 1
  fi
fi

# --- system packages ---------------------------------------------------------------------
PKGS=(
  build-essential g++ make python3          # node-gyp for the native addon
  docker.io containerd runc                 # runc runs strata's containers; dockerd is the reference in tests
  containernetworking-plugins iptables iproute2  # bridge/portmap/loopback CNI plugins for container networks
  curl                                      # the seeds' `curl 127.0.0.1:<port>` in the demo
  skopeo umoci                              # independent readers of saved archives
  docker-registry apache2-utils             # a real registry on loopback (htpasswd for basic auth) for pull/push tests
  busybox-static                            # base image for the demo and tests
  tar gzip pigz                             # archives (GNU tar for fixtures and the bench baseline)
  kmod util-linux e2fsprogs btrfs-progs     # modprobe overlay, mount/umount, filesystems for driver tests
  ca-certificates
)
missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then missing+=("$p"); fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Keep package scripts from starting services (a host dockerd would use /var/lib/docker;
  # the tests start their own private daemon instead).
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    created_policy=1
  fi
  cleanup_policy() { if [ "$created_policy" = 1 ]; then "${SUDO[@]}" rm -f "$policy"; fi; }
  trap cleanup_policy EXIT
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
  cleanup_policy
  trap - EXIT
else
  log "system packages already installed"
fi

# overlayfs must be available for the overlay2 driver (built in or as a module)
if ! grep -qw overlay /proc/filesystems; then
  "${SUDO[@]}" modprobe overlay 2>/dev/null || echo "setup.sh: warning: overlay filesystem not available; overlay2 tests will skip or fail" >&2
fi

# --- node ------------------------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1; then
  echo "setup.sh: node (>= 20) is required and was not found" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup.sh: node >= 20 is required (found $(node --version))" >&2
  exit 1
fi

log "npm dependencies"
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm install --no-audit --no-fund
fi

log "build (native addon + TypeScript)"
npm run build

log "setup done: try 'npm run demo' or 'npm test'"
