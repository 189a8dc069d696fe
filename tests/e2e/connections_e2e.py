#!/usr/bin/env python3
"""The connection cap under a crowd of idle connections (ctest label e2e).

Raises this process's descriptor limit to its hard limit, starts a 2-rank
group with --max-connections 512, then opens up to 10,000 connections that
send nothing (or half a request head, slowloris style) and keeps them open.
Passing means: /healthz answers 200 within 2 s the whole time (the longest
idle connection makes room for it), a job still runs, the log stays small
(accept errors and refusals are rate-limited), and the group exits 0.

usage: connections_e2e.py LTX_WORKER MPIEXEC [mpirun flags...]
"""
import json
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import service_e2e  # noqa: E402  (the Server helper)

WORKER, MPIEXEC, MPI_FLAGS = sys.argv[1], sys.argv[2], sys.argv[3:]
service_e2e.WORKER, service_e2e.MPIEXEC, service_e2e.MPI_FLAGS = WORKER, MPIEXEC, MPI_FLAGS
CAP = 512


def health(srv):
    t0 = time.time()
    status, _, body = srv.request("GET", "/healthz", timeout=10)
    return status, time.time() - t0, body


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    want = min(10000, hard - 256)
    srv = service_e2e.Server(2, "--max-connections", str(CAP))
    held, slow_health = [], 0.0
    try:
        log_before = len(srv.text())
        t0 = time.time()
        for i in range(want):
            s = socket.socket()
            s.setblocking(True)
            s.settimeout(5)
            try:
                s.connect(("127.0.0.1", srv.port))
            except OSError as e:
                raise AssertionError("connection %d failed: %s" % (i, e))
            if i % 3 == 0:
                try:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # half a head, never finished
                except OSError:
                    pass
            held.append(s)
            if i % 1000 == 999:
                status, took, body = health(srv)
                assert status == 200 and json.loads(body)["ready"], (i, status, body[:200])
                slow_health = max(slow_health, took)
        print("  %d idle connections opened in %.1f s (descriptor limit %d); /healthz took at most %.3f s" % (
            len(held), time.time() - t0, hard, slow_health))
        assert slow_health < 2.0, slow_health
        status, _, mp4 = srv.request("POST", "/v1/videos?wait=true",
                                     {"prompt": "crowd", "width": 64, "height": 64, "num_frames": 9,
                                      "num_inference_steps": 2}, timeout=120)
        assert status == 200 and mp4[4:8] == b"ftyp", (status, mp4[:200])
        grown = len(srv.text()) - log_before
        print("  a job ran with the crowd connected; the log grew by %d bytes" % grown)
        assert grown < 64 * 1024, "the log grew by %d bytes:\n%s" % (grown, srv.text()[-3000:])
    finally:
        for s in held:
            s.close()
        rc = srv.stop() if srv.proc.poll() is None else srv.proc.returncode
    assert rc == 0, "the group exited %d:\n%s" % (rc, srv.text()[-3000:])
    print("connections_e2e: passed")


if __name__ == "__main__":
    main()
