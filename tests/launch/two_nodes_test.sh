#!/bin/sh
# Two emulated nodes of two ranks each on this machine (mpirun app contexts,
# LTX_NODE_ID, a model cache per node): every node must split off by itself,
# size its threads to its own ranks and write the built-in model into its own
# cache. Prints "two nodes decided for themselves" when all of that holds.
#   two_nodes_test.sh MPIEXEC WORKER DIR [mpiexec flags ...]
set -u
mpiexec=$1 worker=$2 dir=$3
shift 3
rm -rf "$dir" && mkdir -p "$dir"
args="generate --prompt harbor --width 64 --height 64 --frames 9 --steps 2 --out none"
# shellcheck disable=SC2086
"$mpiexec" "$@" -n 2 -x LTX_NODE_ID=0 -x LTX_CACHE_DIR="$dir/0" "$worker" $args \
  : -n 2 -x LTX_NODE_ID=1 -x LTX_CACHE_DIR="$dir/1" "$worker" $args > "$dir/log" 2>&1
rc=$?
cat "$dir/log"
[ "$rc" -eq 0 ] || { echo "mpirun exited $rc"; exit 1; }
for n in 0 1; do
  [ -f "$dir/$n/builtin-ltx-video-v2/model_index.json" ] || { echo "node $n wrote no model into its cache"; exit 1; }
done
for r in 0 1; do
  c=$(grep -c "node-local: local rank $r of 2" "$dir/log")
  [ "$c" -eq 2 ] || { echo "local rank $r of 2 logged $c times, want 2 (once per node)"; exit 1; }
done
want=$(( $(nproc) / 2 )); [ "$want" -ge 1 ] || want=1
c=$(grep -c "of 2 on .*, $want thread(s)" "$dir/log")
[ "$c" -eq 4 ] || { echo "$c ranks sized their threads to their node ($want each), want 4"; exit 1; }
# A node id on some ranks only is refused by every rank, before any work.
"$mpiexec" "$@" -n 1 -x LTX_NODE_ID=0 "$worker" inspect "$dir/0/builtin-ltx-video-v2" : -n 1 "$worker" inspect x \
  > "$dir/partial" 2>&1 && { echo "a partial LTX_NODE_ID was accepted"; exit 1; }
grep -q "LTX_NODE_ID is set on some ranks only" "$dir/partial" || { cat "$dir/partial"; echo "no clear error"; exit 1; }
echo "two nodes decided for themselves"
