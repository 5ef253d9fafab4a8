#!/usr/bin/env bash
# strata demo (npm run demo): build a busybox base image from Debian's busybox-static without
# Docker, load it, look at it the way `docker images/inspect/history` do, walk the on-disk
# layout the way Docker users do (imagedb → diff_ids → layerdb/<chainID> → cache-id →
# overlay2/<cache-id>/diff), then save it and load the saved archive back.
#
# Then the seeds' copy-on-write facts and seed 000's volume scenario: bind mounts, anonymous
# and named volumes, sharing, volume containers, a data-packed volume container, each
# `curl 127.0.0.1:<published port>` answered by a busybox httpd playing nginx.
#
# Uses $STRATA_ROOT as the data root when set (kept afterwards); otherwise a temp root that is
# removed at the end. Needs root for overlay2 (the vfs driver works anywhere).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

if [ ! -f dist/cli/strata.cjs ]; then
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
  # containers first (their processes, network namespaces and port forwards), then
  # unmount anything left under our directories (deepest first), then remove them
  if [ "$keep_root" = 0 ] && [ -d "$root" ]; then
    ids=$("$repo/bin/strata" ps -aq 2>/dev/null || true)
    [ -n "$ids" ] && "$repo/bin/strata" rm -f $ids >/dev/null 2>&1 || true
    # the root's runtime dir (runc state, network records): /run/strata/<sha256(root)[:16]>
    rm -rf "/run/strata/$(printf %s "$root" | sha256sum | cut -c1-16)"
  fi
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
strata() { "$repo/bin/strata" "$@"; }

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

say "6. The seeds' copy-on-write facts: a container layer on top of the image layers"
run strata run -d --name cow busybox sleep 600
run strata exec cow sh -c 'echo new > /newfile; echo more >> /etc/group; rm /bin/zcat'
run strata diff cow
upper=$(strata inspect -f '{{.GraphDriver.Data.UpperDir}}' cow)
echo "the container's own layer (UpperDir) holds only what it changed:"
run ls -la "$upper" "$upper/bin"
run strata rm -f cow

say "7. The seeds' volume scenario (seed 000): httpd from busybox plays nginx"
html=/usr/share/nginx/html
# "nginx:latest": busybox httpd serving a default page from the image.
run strata run --network none --name mk-nginx busybox sh -c "mkdir -p $html && echo 'Welcome to nginx!' > $html/index.html"
run strata commit -c "CMD [\"httpd\",\"-f\",\"-p\",\"80\",\"-h\",\"$html\"]" -c 'EXPOSE 80' mk-nginx nginx:latest
run strata rm mk-nginx
port() { echo $((20000 + RANDOM % 20000)); }
get() { # the seeds' curl, retried while httpd starts
  local i
  for i in $(seq 1 50); do curl -s -m 2 "http://127.0.0.1:$1" && return 0; sleep 0.1; done
  echo "demo: nothing answers on 127.0.0.1:$1" >&2; return 1
}

echo "--- bind mount: the host directory replaces the image's"
mkdir -p "$work/html" && echo hello > "$work/html/index.html"
p1=$(port)
run strata run --name cynginx -d -p "$p1:80" -v "$work/html:$html" nginx:latest
run get "$p1"
echo 'hello huayu' > "$work/html/index.html"
run get "$p1"
run strata stop cynginx
run strata rm cynginx
run cat "$work/html/index.html"
echo "--- :ro"
run strata run --name cynginx1 -d -p "$(port):80" -v "$work/html:$html:ro" nginx:latest
strata exec cynginx1 sh -c "echo huayu123 > $html/index.html" || true
run strata rm -f cynginx1

echo "--- docker-managed (anonymous) volume, prepopulated from the image"
p2=$(port)
run strata run --name cynginx2 -d -p "$p2:80" -v "$html/" nginx:latest
run strata inspect -f '{{json .Mounts}}' cynginx2
src=$(strata inspect -f '{{(index .Mounts 0).Source}}' cynginx2)
run ls -l "$src"
echo huayu1234 > "$src/index.html"
run get "$p2"

echo "--- named volume"
run strata volume create cyhuayu
run strata volume ls
p3=$(port)
run strata run --name cynginx3 -d -p "$p3:80" -v cyhuayu:$html/ nginx:latest
run get "$p3"
run strata volume inspect cyhuayu

echo "--- one host directory shared by three containers"
for i in 1 2 3; do pp[$i]=$(port); run strata run --name apache$i -d -p "${pp[$i]}:80" -v "$work/html:$html/" nginx:latest; done
for i in 1 2 3; do run get "${pp[$i]}"; done

echo "--- a volume container (created, never started) and --volumes-from"
run strata create --name cy_data -v "$work/html:$html" busybox
for i in 4 5 6; do pp[$i]=$(port); run strata run --name vf$i -d -p "${pp[$i]}:80" --volumes-from cy_data nginx:latest; done
echo 'welcome to huayuedu' > "$work/html/index.html"
for i in 4 5 6; do run get "${pp[$i]}"; done

echo "--- a data-packed volume container: image data + VOLUME"
run strata run --network none --name packer busybox sh -c "mkdir -p $html && echo packed huayu > $html/index.html"
run strata commit -c "VOLUME $html" packer cy_hy
run strata create --name cy_data123 cy_hy
p7=$(port)
run strata run --name cynginx7 -d -p "$p7:80" --volumes-from cy_data123 nginx:latest
run get "$p7"

echo "--- rm -v: anonymous volumes go, named ones stay"
run strata rm -f -v cynginx2 cynginx3
run strata volume ls
run strata ps -a
run strata rm -f apache1 apache2 apache3 vf4 vf5 vf6 cynginx7 cy_data cy_data123 packer

say "done"
if [ "$keep_root" = 1 ]; then echo "data root kept at $root"; fi
