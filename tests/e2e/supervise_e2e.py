#!/usr/bin/env python3
"""A dead rank costs no session (ctest label e2e).

Runs scripts/supervise -- mpirun -n 2 ltx-worker serve --state-dir D on a
fixed port. A stream makes chunks 0 and 1 (persisted after each), its twin
(same settings and seed) chunks 0, 1 and 2; a slow job with a waiting client
runs; rank 1 is SIGKILLed. The waiting client gets a 503 JSON answer within
5 s, the supervisor restarts the group, and the first stream resumes by its
id: its chunk 2 is the twin's chunk 2. Then SIGTERM to the supervisor drains
the new group: every rank logs exit 0 and the supervisor exits 0.

usage: supervise_e2e.py LTX_WORKER SUPERVISE MPIEXEC [mpirun flags...]
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import service_e2e  # noqa: E402  (HTTP helpers)

WORKER, SUPERVISE, MPIEXEC, MPI_FLAGS = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
SLOW = {"prompt": "a slow one", "width": 512, "height": 512, "num_frames": 65, "num_inference_steps": 60}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Supervised(service_e2e.Server):
    """The Server helper's HTTP methods over a supervised group on a fixed port."""

    def __init__(self, state_dir):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="ltx-supervise-", suffix=".log", delete=False)
        cmd = [SUPERVISE, "--restart-delay", "1", "--", MPIEXEC, "-n", "2", *MPI_FLAGS, WORKER, "serve",
               "--port", str(self.port), "--state-dir", state_dir]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_listening(1)

    def wait_listening(self, nth, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = re.findall(r"listening on http://127\.0\.0\.1:\d+ \(rank 0 pid (\d+)", self.text())
            if len(found) >= nth:
                self.pid = int(found[nth - 1])
                try:
                    if self.request("GET", "/healthz", timeout=5)[0] == 200:
                        return
                except OSError:
                    pass
            if self.proc.poll() is not None:
                raise AssertionError("the supervisor exited:\n" + self.text()[-3000:])
            time.sleep(0.1)
        raise AssertionError("the group did not listen (start %d):\n%s" % (nth, self.text()[-3000:]))


def rank1_pid(rank0):
    """The other ltx-worker under the same mpirun as rank 0."""
    parent = open("/proc/%d/stat" % rank0).read().split(")")[1].split()[1]
    kids = subprocess.run(["pgrep", "-P", parent], capture_output=True, text=True).stdout.split()
    others = [int(k) for k in kids if int(k) != rank0]
    assert others, (rank0, parent, kids)
    return others[0]


def main():
    state_dir = tempfile.mkdtemp(prefix="ltx-state-")
    srv = Supervised(state_dir)
    try:
        victim = service_e2e.make_stream(srv)["id"]
        twin = service_e2e.make_stream(srv)["id"]
        for i in range(2):
            service_e2e.chunk(srv, victim, i)
        for i in range(3):
            _, want = service_e2e.chunk(srv, twin, i)
        assert os.path.exists(os.path.join(state_dir, "sessions", victim + ".json")), os.listdir(state_dir)

        t, answer = service_e2e.wait_for_running_job(srv, SLOW)
        killed_at = time.time()
        os.kill(rank1_pid(srv.pid), signal.SIGKILL)
        t.join(timeout=60)
        status, hdrs, body = answer["r"]
        assert status == 503 and json.loads(body)["error"]["code"] == "unavailable", (status, body[:300])
        took = answer["t"] - killed_at
        assert took < 5.0, took
        print("  rank 1 killed: the waiting client got 503 after %.2f s" % took)

        t0 = time.time()
        srv.wait_listening(2)
        print("  the supervisor restarted the group in %.1f s" % (time.time() - t0))
        s = srv.json("GET", "/v1/streams/" + victim)
        assert s["last_chunk"] == 1 and s["next_chunk"] == 2, s
        _, got = service_e2e.chunk(srv, victim, 2)
        diff = service_e2e.mean_abs_diff(service_e2e.frames_of(got), service_e2e.frames_of(want))
        assert diff < 0.5, "the resumed chunk 2 differs from the twin's by %.3f levels" % diff
        print("  stream %s resumed by its id: chunk 2 equals the uninterrupted twin's (%.3f levels)" % (victim, diff))

        os.kill(srv.proc.pid, signal.SIGTERM)
        rc = srv.proc.wait(timeout=120)
        text = srv.text()
        after_restart = text[text.rfind("listening on"):]
        exits = re.findall(r"\[rank (\d)\] serve: the group stopped; exiting with (\d)", after_restart)
        assert rc == 0 and sorted(exits) == [("0", "0"), ("1", "0")], (rc, exits, text[-3000:])
        print("  SIGTERM to the supervisor: every rank drained and exited 0, the supervisor 0")
    except BaseException:
        print(srv.text()[-5000:])
        raise
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
    print("supervise_e2e: passed")


if __name__ == "__main__":
    main()
