#!/usr/bin/env bash
# Black-box test of `ltx-worker serve`: start the real binary under mpirun, wait
# for /healthz, make a video through the job API, check the error cases, then
# SIGTERM rank 0 and require every rank to exit 0.
# Usage: serve_test.sh LTX_WORKER MPIEXEC NP [mpirun flags...]
set -uo pipefail
worker="$1"; mpiexec="$2"; np="$3"; shift 3
log=$(mktemp); trap 'kill $mpipid 2>/dev/null; rm -f "$log"' EXIT
fail() { echo "FAIL: $*"; echo "--- server log"; cat "$log"; exit 1; }

"$mpiexec" -n "$np" "$@" "$worker" serve --port 0 >"$log" 2>&1 &
mpipid=$!
for _ in $(seq 1 600); do
  grep -q "listening on" "$log" && break
  kill -0 $mpipid 2>/dev/null || fail "the server exited early"
  sleep 0.1
done
port=$(grep -o "127.0.0.1:[0-9]*" "$log" | head -1 | cut -d: -f2)
pid=$(grep -o "pid [0-9]*" "$log" | head -1 | cut -d' ' -f2)
[ -n "$port" ] && [ -n "$pid" ] || fail "no listening line"
url="http://127.0.0.1:$port"

health=$(curl -sf "$url/healthz") || fail "/healthz"
echo "$health" | grep -q "\"group_size\":$np" || fail "healthz: $health"
created=$(curl -s -w ' %{http_code}' -XPOST "$url/v1/videos" \
  -d '{"prompt":"waves at night","width":64,"height":64,"num_frames":9,"num_inference_steps":2,"seed":3}')
echo "$created" | grep -q ' 202$' || fail "POST /v1/videos: $created"
id=$(echo "$created" | grep -o '"id":"[^"]*"' | cut -d'"' -f4)
for _ in $(seq 1 600); do
  status=$(curl -sf "$url/v1/videos/$id") || fail "GET /v1/videos/$id"
  echo "$status" | grep -q '"status":"completed"' && break
  echo "$status" | grep -q '"status":"failed"' && fail "job failed: $status"
  sleep 0.1
done
echo "$status" | grep -q '"status":"completed"' || fail "job did not finish: $status"
curl -sf "$url/v1/videos/$id/content" -o "$log.mp4" || fail "content"
head -c 12 "$log.mp4" | grep -q ftyp || fail "content is not an MP4"
rm -f "$log.mp4"

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code -XPOST "$url/v1/videos" -d '{not json')" = 400 ] || fail "bad JSON must be 400"
[ "$(code -XPOST "$url/v1/videos" -d '{"prompt":"x","width":100}')" = 422 ] || fail "bad width must be 422"
[ "$(code -XPOST "$url/v1/videos" -d '{"prompt":"x","widht":64}')" = 422 ] || fail "unknown field must be 422"
[ "$(code "$url/v1/videos/vid_999")" = 404 ] || fail "unknown id must be 404"
[ "$(code "$url/no/such/route")" = 404 ] || fail "unknown route must be 404"
curl -s -XPOST "$url/v1/videos" -d '{"prompt":"x","width":100}' | grep -q '"field":"width"' || fail "error names the field"

metrics=$(curl -sf "$url/metrics") || fail "/metrics"
echo "$metrics" | grep -q 'ltx_http_requests_total{route="/v1/videos",status="202"} 1' || fail "metrics: requests"
echo "$metrics" | grep -q 'ltx_denoise_step_seconds_count 2' || fail "metrics: steps"
echo "$metrics" | grep -q 'ltx_videos_completed 1' || fail "metrics: completed"

kill -TERM "$pid"
wait $mpipid
rc=$?
[ $rc -eq 0 ] || fail "mpirun exited $rc after SIGTERM to rank 0"
grep -q "shutting down" "$log" || fail "no graceful shutdown line"
echo "serve e2e: PASS ($np ranks, port $port)"
