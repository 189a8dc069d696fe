#!/usr/bin/env python3
"""The official `openai` npm package against a 2-rank group (ctest label e2e).

Starts `ltx-worker serve` under mpirun twice, without and with an API key, and
runs openai_sdk_e2e.cjs (models.list, videos.create as multipart and JSON,
retrieve until completed, downloadContent and its thumbnail, list with
pagination, delete, the error paths; with the key also a wrong key's 401).
The downloaded MP4 must decode (ffprobe). Then plain HTTP checks that the key
does not lock out what must stay open: /healthz, the page, curl's `-d` with
the key. The SDK comes from scripts/install-deps (deps/npm/node_modules).

usage: openai_sdk_e2e.py LTX_WORKER NODE_MODULES MPIEXEC [mpirun flags...]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import service_e2e  # noqa: E402  (the Server helper)

WORKER, NODE_MODULES, MPIEXEC, MPI_FLAGS = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
service_e2e.WORKER, service_e2e.MPIEXEC, service_e2e.MPI_FLAGS = WORKER, MPIEXEC, MPI_FLAGS
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openai_sdk_e2e.cjs")
KEY = "e2e-test-key-0123456789"
MODEL = "builtin:ltx-video"


def run_sdk(srv, key):
    node = shutil.which("node")
    assert node, "no node on PATH (scripts/install-deps installs it)"
    assert os.path.isdir(os.path.join(NODE_MODULES, "openai")), \
        "the openai package is missing from %s: run scripts/install-deps" % NODE_MODULES
    tmp = tempfile.mkdtemp(prefix="ltx-sdk-")
    mp4 = os.path.join(tmp, "sdk.mp4")
    env = dict(os.environ, NODE_PATH=NODE_MODULES, BASE_URL="http://127.0.0.1:%d/v1" % srv.port, MODEL=MODEL,
               API_KEY=key, MP4_OUT=mp4)
    t0 = time.time()
    out = subprocess.run([node, SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    print(out.stdout, end="")
    assert out.returncode == 0, "the SDK script failed:\n%s\n%s\nserver log:\n%s" % (
        out.stdout[-4000:], out.stderr[-4000:], srv.text()[-4000:])
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                            "stream=codec_name,nb_read_frames", "-of", "json", mp4], capture_output=True, text=True)
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream["codec_name"] == "h264" and int(stream["nb_read_frames"]) == 9, stream
    print("  the downloaded MP4 decodes: %s, %s frames (SDK run %.1f s)" % (
        stream["codec_name"], stream["nb_read_frames"], time.time() - t0))
    shutil.rmtree(tmp, ignore_errors=True)


def main():
    print("openai SDK, no API key")
    srv = service_e2e.Server(2)
    try:
        run_sdk(srv, "")
    finally:
        srv.stop()

    print("openai SDK, --api-key")
    srv = service_e2e.Server(2, "--api-key", KEY)
    try:
        run_sdk(srv, KEY)
        # What stays open, and curl's plain -d with the key.
        assert srv.request("GET", "/healthz")[0] == 200
        assert srv.request("GET", "/")[0] == 200
        status, hdrs, body = srv.request("GET", "/v1/models")
        assert status == 401 and hdrs.get("www-authenticate") == "Bearer", (status, hdrs, body)
        assert json.loads(body)["error"]["code"] == "missing_api_key", body
        body = json.dumps({"prompt": "curl", "width": 64, "height": 64, "num_frames": 9, "num_inference_steps": 2})
        status, _, payload = srv.request("POST", "/v1/videos", body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Authorization": "Bearer " + KEY})
        assert status == 202, (status, payload)
        print("  with the key: /healthz and / open, /v1/models 401 without it, curl -d with it 202")
    finally:
        srv.stop()
    print("openai_sdk_e2e: passed")


if __name__ == "__main__":
    main()
