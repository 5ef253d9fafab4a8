#!/usr/bin/env bash
# strata demo (npm run demo): build a busybox base image from Debian's busybox-static without
# Docker, load it, look at it the way `docker images/inspect/history` do, walk the on-disk
# layout the way Docker users do (imagedb → diff_ids → layerdb/<chainID> → cache-id →
# overlay2/<cache-id>/diff), then save it and load the saved archive back.
#
# Uses $STRATA_ROOT as the data root when set (kept afterwards); otherwise a temp root that is
# removed at the end. Needs root for overlay2 (the vfs driver works anywhere).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

if [ ! -f dist/src/cli/main.js ] || [ ! -f bin/strata.js ]; then
  echo "demo: strata is not built; run: bash scripts/setup.sh" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-demo.XXXXXX")
if [ -n "${STRATA_ROOT:-}" ]; then
  root=$STRATA_ROOT
  keep_root=1
else
  root=$work/root
  keep_root=0
fi
export STRATA_ROOT=$root

cleanup() {
  # unmount anything left under our directories (deepest first), then remove them
  for d in "$work" $([ "$keep_root" = 0 ] && echo "$root"); do
    if [ -d "$d" ]; then
      awk -v d="$d" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null || true; done
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

bold=$(printf '\033[1m'); dim=$(printf '\033[2m'); off=$(printf '\033[0m')
if [ ! -t 1 ]; then bold=''; dim=''; off=''; fi
say() { printf '\n%s## %s%s\n' "$bold" "$*" "$off"; }
run() {
  local shown=() a
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then shown+=("$a"); else shown+=("'${a//\'/\'\\\'\'}'"); fi
  done
  printf '%s$ %s%s\n' "$dim" "${shown[*]}" "$off"
  "$@"
}
strata() { node "$repo/bin/strata.js" "$@"; }

say "1. Build a base image from busybox-static (no Docker involved)"
run node scripts/make-base-image.js -o "$work/busybox.tar"
run tar -tvf "$work/busybox.tar"

say "2. Load it (data root: $root)"
run strata load -i "$work/busybox.tar"
driver=$(strata info 2>/dev/null | awk -F': ' '/Storage Driver/ { print $2; exit }')
driver=${driver:-overlay2}
echo "storage driver: $driver"

say "3. What docker would show"
run strata images
run strata image inspect --format '{{json .RootFS}}' busybox:latest
run strata image inspect busybox:latest
run strata image history busybox:latest

say "4. Walk the on-disk layout (Docker's): imagedb → diff_ids → layerdb → cache-id → driver dir"
image_id=$(strata images -q --no-trunc | sed -n '1p')
image_id=${image_id#sha256:}
img_root=$root/image/$driver
run ls -l "$img_root"
echo "image ID = sha256 of the config bytes:"
run sha256sum "$img_root/imagedb/content/sha256/$image_id"
echo "rootfs.diff_ids in the config:"
run node -e 'const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(JSON.stringify(c.rootfs, null, 2));' \
  "$img_root/imagedb/content/sha256/$image_id"
mapfile -t diff_ids < <(node -e 'const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); for (const d of c.rootfs.diff_ids) console.log(d);' \
  "$img_root/imagedb/content/sha256/$image_id")
chain=""
for diff in "${diff_ids[@]}"; do
  if [ -z "$chain" ]; then
    chain=$diff
    echo "base layer: chainID = diffID = $chain"
  else
    echo "chainID = sha256(\"<parent chainID> <diffID>\"):"
    run sh -c "printf '%s' '$chain $diff' | sha256sum"
    chain="sha256:$(printf '%s' "$chain $diff" | sha256sum | cut -d' ' -f1)"
  fi
  layer=$img_root/layerdb/sha256/${chain#sha256:}
  run ls -l "$layer"
  run cat "$layer/diff"; echo
  run cat "$layer/size"; echo
  cache_id=$(cat "$layer/cache-id")
  run cat "$layer/cache-id"; echo
  if [ "$driver" = overlay2 ]; then
    run ls -l "$root/overlay2/$cache_id"
    link=$(cat "$root/overlay2/$cache_id/link")
    run readlink "$root/overlay2/l/$link"
    run ls "$root/overlay2/$cache_id/diff"
    run ls -l "$root/overlay2/$cache_id/diff/bin" | sed -n '1,8p'
  else
    run ls "$root/$driver/dir/$cache_id"
  fi
done

say "5. Save it and load the saved archive back"
run strata save -o "$work/saved.tar" busybox:latest
run tar -tvf "$work/saved.tar"
run strata tag busybox:latest demo/busybox:copy
run strata images
run strata rmi busybox:latest demo/busybox:copy
run strata images
run strata load -i "$work/saved.tar"
reloaded=$(strata images -q --no-trunc | sed -n '1p')
reloaded=${reloaded#sha256:}
if [ "$reloaded" = "$image_id" ]; then
  echo "same image ID after save → rmi → load: sha256:$image_id"
else
  echo "demo: image ID changed across save/load ($image_id → $reloaded)" >&2
  exit 1
fi
run strata system df
run strata info

say "6. Containers and volumes"
# ------------------------------------------------------------------------------------------
# PLACEHOLDER — the seeds' volume scenario needs containers and volumes (later issues):
#   strata volume create data
#   strata run --rm -v data:/data busybox:latest sh -c 'echo hello > /data/hi'
#   strata run --rm -v data:/data busybox:latest cat /data/hi
#   strata volume inspect data   # Mountpoint: $STRATA_ROOT/volumes/data/_data
# ------------------------------------------------------------------------------------------
echo "(not yet: containers and volumes arrive in later issues)"

say "done"
if [ "$keep_root" = 1 ]; then echo "data root kept at $root"; fi
