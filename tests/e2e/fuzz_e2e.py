#!/usr/bin/env python3
"""Fuzzing the service over HTTP (ctest label e2e).

A 2-rank group with the built-in model gets FUZZ_REQUESTS mutated HTTP
requests (raw bytes: methods, paths with non-UTF-8 bytes and escapes, header
garbage, oversized heads, Host/Origin/Authorization noise, bodies with deep
nesting, wrong types, truncation, multipart garbage) and FUZZ_STATES mutated
continuation-state documents (fields deleted or retyped, settings changed,
base64 bit flips, the tensors' safetensors bytes damaged under a recomputed
checksum, NaN/Inf written into latents). Passing means: no answer is a 5xx
other than 503, rank 0 answers /healthz after, and a valid job and a valid
resume still succeed. Seeded, so a failure can be replayed (FUZZ_SEED).

usage: fuzz_e2e.py LTX_WORKER MPIEXEC [mpirun flags...]
"""
import base64
import copy
import hashlib
import json
import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import service_e2e  # noqa: E402  (the Server helper)

WORKER, MPIEXEC, MPI_FLAGS = sys.argv[1], sys.argv[2], sys.argv[3:]
service_e2e.WORKER, service_e2e.MPIEXEC, service_e2e.MPI_FLAGS = WORKER, MPIEXEC, MPI_FLAGS
SEED = int(os.environ.get("FUZZ_SEED", "20261202"))
REQUESTS = int(os.environ.get("FUZZ_REQUESTS", "5000"))
STATES = int(os.environ.get("FUZZ_STATES", "1000"))
TINY = {"prompt": "fuzz", "width": 64, "height": 64, "num_frames": 9, "num_inference_steps": 2}
rng = random.Random(SEED)


def exchange(port, data, timeout=10):
    """Sends raw bytes, half-closes, reads the answer: the status code, or None when the server only closed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    chunks = []
    try:
        try:  # the server may answer (431, 400) and close before it has read everything
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        while True:
            try:
                b = s.recv(65536)
            except (OSError, socket.timeout):
                break
            if not b:
                break
            chunks.append(b)
            if sum(len(c) for c in chunks) > 1 << 20:
                break
    finally:
        s.close()
    head = b"".join(chunks)
    # An interim "100 Continue" (Expect: 100-continue) precedes the answer.
    while head.startswith(b"HTTP/1.1 100 ") and b"\r\n\r\n" in head:
        head = head[head.index(b"\r\n\r\n") + 4:]
    if not head.startswith(b"HTTP/1.1 "):
        return None, head[:200]
    return int(head[9:12]), head[:400]


# ---------------------------------------------------------------- HTTP mutations

PATHS = ["/", "/healthz", "/metrics", "/v1/models", "/v1/videos", "/v1/videos/vid_x", "/v1/videos/vid_x/content",
         "/v1/videos/vid_x/events", "/v1/streams", "/v1/streams/str_x", "/v1/streams/str_x/chunks",
         "/v1/streams/str_x/state", "/v1/streams/str_x/events"]
METHODS = [b"GET", b"POST", b"DELETE", b"PUT", b"PATCH", b"OPTIONS", b"HEAD", b"G\x00T", b"POST POST", b"", b"\xff\xfe"]


def random_bytes(n):
    return bytes(rng.randrange(256) for _ in range(n))


def json_value(depth=0):
    k = rng.randrange(9 if depth < 3 else 6)
    return [lambda: rng.randrange(-2**70, 2**70), lambda: rng.random() * 10 ** rng.randrange(-5, 300), lambda: None,
            lambda: rng.choice([True, False]), lambda: "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(8))),
            lambda: "x" * rng.randrange(0, 20000),
            lambda: [json_value(depth + 1) for _ in range(rng.randrange(4))],
            lambda: {rng.choice(list(TINY) + ["seed", "fps", "sink", "state", "index", "model", "size", "seconds"]):
                     json_value(depth + 1) for _ in range(rng.randrange(4))},
            lambda: {"kind": "ltx-worker.stream-state", "schema_version": json_value(depth + 1)}][k]()


def body_mutation():
    base = dict(TINY)
    k = rng.randrange(10)
    if k == 0:
        return b"[" * rng.choice([100, 1000, 60000]) + b"]" * rng.randrange(2)
    if k == 1:
        return b'{"a":' * rng.choice([70, 5000]) + b"1" + b"}" * 10
    if k == 2:
        return random_bytes(rng.randrange(0, 2000))
    if k == 3:
        key = rng.choice(list(base) + ["seed", "fps", "guidance_scale", "chunk_frames", "window", "index", "state"])
        base[key] = json_value()
        return json.dumps(base).encode()
    if k == 4:
        text = json.dumps(base).encode()
        return text[:rng.randrange(len(text))]
    if k == 5:
        return json.dumps(json_value()).encode()
    if k == 6:
        b = json.dumps(base).encode()
        i = rng.randrange(len(b))
        return b[:i] + bytes([rng.randrange(256)]) + b[i + 1:]
    if k == 7:
        return json.dumps({"prompt": "\udcff".encode("utf-8", "surrogatepass").decode("latin-1")}).encode()
    if k == 8:
        return ("{\"prompt\": \"" + "\\u" + "".join(rng.choice("0123456789abcdefXYZ") for _ in range(4)) + "\"}").encode()
    return json.dumps(base).encode()


def multipart_body():
    boundary = rng.choice([b"----b", b"x" * rng.randrange(1, 300), b"", random_bytes(8)])
    parts = []
    for _ in range(rng.randrange(0, 6)):
        name = rng.choice([b"prompt", b"model", b"seconds", b"size", b"input_reference", b"seed", random_bytes(5)])
        head = b"Content-Disposition: form-data; name=\"" + name + b"\""
        if rng.random() < 0.2:
            head += b"; filename=\"f.png\"\r\nContent-Type: image/png"
        if rng.random() < 0.1:
            head = random_bytes(rng.randrange(1, 100))
        parts.append(b"--" + boundary + b"\r\n" + head + b"\r\n\r\n" + rng.choice([b"a cat", b"4", b"64x64", b"-1",
                                                                                      random_bytes(20)]) + b"\r\n")
    tail = rng.choice([b"--" + boundary + b"--\r\n", b"", b"--" + boundary])
    return b"".join(parts) + tail, b"multipart/form-data; boundary=" + boundary


def http_request():
    method = rng.choice(METHODS) if rng.random() < 0.3 else rng.choice([b"GET", b"POST", b"DELETE"])
    path = rng.choice(PATHS).encode()
    r = rng.random()
    if r < 0.1:
        path += random_bytes(rng.randrange(1, 40))
    elif r < 0.15:
        path = b"/" + b"a" * rng.randrange(1000, 20000)
    elif r < 0.2:
        path += b"?" + b"&".join(rng.choice([b"wait=true", b"limit=-1", b"after=\xff", b"variant=%00", b"order=x"])
                                 for _ in range(3))
    elif r < 0.25:
        path = path.replace(b"_x", b"_%2e%2e%2f" + random_bytes(3))
    version = b"HTTP/1.1" if rng.random() < 0.95 else rng.choice([b"HTTP/1.0", b"HTTP/2.0", b"HTTX/1.1", b""])
    headers = [b"Host: 127.0.0.1"] if rng.random() < 0.93 else [rng.choice([b"Host: evil.example", b"Host:", b"Host: \xff"])]
    content_type = None
    body = b""
    if method == b"POST" or rng.random() < 0.1:
        if rng.random() < 0.15:
            body, content_type = multipart_body()
        else:
            body = body_mutation()
    if content_type:
        headers.append(b"Content-Type: " + content_type)
    for _ in range(rng.randrange(0, 3)):
        headers.append(rng.choice([b"Origin: http://evil.example", b"Origin: null", b"Authorization: Bearer \xff",
                                   b"X-" + random_bytes(4) + b": y", b"Expect: 100-continue", b"Cookie: ltx_api_key=%zz",
                                   b"Transfer-Encoding: chunked", b"Content-Length: -1", b"Bad Header",
                                   b"X-Big: " + b"a" * rng.randrange(10000, 40000)]))
    length = len(body)
    if rng.random() < 0.05:
        length += rng.choice([-5, 7, 10**12])
    if not any(h.lower().startswith(b"content-length") or h.lower().startswith(b"transfer-encoding") for h in headers):
        headers.append(b"Content-Length: " + str(max(0, length)).encode())
    return method + b" " + path + b" " + version + b"\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + body


# ---------------------------------------------------------------- state mutations

def safetensors_nan(raw):
    """Writes NaN or Inf over a few floats of the first F32 tensor named window.* in a safetensors file."""
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    names = [k for k, v in header.items() if k.startswith("window.") and v.get("dtype") == "F32"]
    if not names:
        return raw
    begin, end = header[rng.choice(names)]["data_offsets"]
    out = bytearray(raw)
    for _ in range(3):
        at = 8 + n + begin + 4 * rng.randrange((end - begin) // 4)
        out[at:at + 4] = struct.pack("<f", rng.choice([float("nan"), float("inf"), -float("inf")]))
    return bytes(out)


def leaves(doc, path=()):
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from leaves(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from leaves(v, path + (i,))
    yield path


def mutate_state(good):
    doc = copy.deepcopy(good)
    tensors = doc["tensors"]
    k = rng.randrange(8)
    if k == 0:  # a field deleted
        path = rng.choice([p for p in leaves(doc) if p])
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        del parent[path[-1]]
    elif k == 1:  # a field retyped or set to a random value
        path = rng.choice([p for p in leaves(doc) if p])
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = json_value()
    elif k == 2:  # a setting changed to a plausible number
        key = rng.choice(list(doc["settings"]))
        doc["settings"][key] = rng.choice([0, 1, -1, 2, 3, 7, 8, 9, 64, 65, 10**9, 0.5, 2**64, "x"])
    elif k == 3:  # a bit flip in the inline base64, checksum kept
        b64 = tensors["inline"]
        i = rng.randrange(len(b64))
        tensors["inline"] = b64[:i] + rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + b64[i + 1:]
    elif k in (4, 5):  # the bytes damaged, the checksum and size recomputed (so the parser sees them)
        raw = bytearray(base64.b64decode(tensors["inline"]))
        if k == 4:
            for _ in range(rng.randrange(1, 8)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
        else:
            raw = bytearray(safetensors_nan(bytes(raw)))
        if rng.random() < 0.2:
            raw = raw[:rng.randrange(len(raw))]
        tensors["inline"] = base64.b64encode(bytes(raw)).decode()
        tensors["sha256"] = hashlib.sha256(bytes(raw)).hexdigest()
        tensors["bytes"] = len(raw)
    elif k == 6:  # the session's position
        doc["session"][rng.choice(["last_chunk", "base_frame", "next_chunk"])] = rng.choice([-1, 0, 1, 2, 5, 10**12])
    else:  # the trailing frames
        doc["trailing_frames_png"] = rng.choice([["!!"], [base64.b64encode(random_bytes(50)).decode()], "x", [1]])
    return doc


# ---------------------------------------------------------------- the run

def main():
    srv = service_e2e.Server(2, "--max-queue", "8", "--max-sessions", "4")
    failures = []
    try:
        # A real state to mutate, and to resume at the end.
        s = service_e2e.make_stream(srv)
        service_e2e.chunk(srv, s["id"], 0)
        service_e2e.chunk(srv, s["id"], 1)
        good = srv.json("GET", "/v1/streams/%s/state" % s["id"])
        want_next = service_e2e.chunk(srv, s["id"], 2)[1]
        srv.json("DELETE", "/v1/streams/" + s["id"])

        t0, seen = time.time(), {}
        for i in range(REQUESTS):
            data = http_request()
            status, head = exchange(srv.port, data)
            seen[status] = seen.get(status, 0) + 1
            if status is not None and status >= 500 and status != 503:
                failures.append("request %d answered %d: %r -> %r" % (i, status, data[:300], head))
            if i % 500 == 0 and srv.proc.poll() is not None:
                raise AssertionError("the group died after request %d: %r\n%s" % (i, data[:300], srv.text()[-3000:]))
        print("HTTP fuzz: %d requests in %.1f s, answers %s" % (REQUESTS, time.time() - t0,
                                                                 sorted(seen.items(), key=lambda kv: str(kv[0]))))

        t0, seen, created = time.time(), {}, 0
        for i in range(STATES):
            doc = mutate_state(good)
            status, _, body = srv.request("POST", "/v1/streams", {"state": doc}, timeout=60)
            seen[status] = seen.get(status, 0) + 1
            if status >= 500 and status != 503:
                failures.append("state %d answered %d: %s" % (i, status, body[:300]))
            if status == 201:
                created += 1
                srv.request("DELETE", "/v1/streams/" + json.loads(body)["id"])
        print("state fuzz: %d documents in %.1f s, answers %s (%d harmless mutations resumed)" % (
            STATES, time.time() - t0, sorted(seen.items()), created))

        # Healthy after: health, a valid job, a valid resume with the same next chunk.
        assert srv.proc.poll() is None, "the group died:\n" + srv.text()[-3000:]
        h = srv.json("GET", "/healthz")
        assert h["ready"] is True, h
        status, _, mp4 = srv.request("POST", "/v1/videos?wait=true", TINY)
        assert status == 200 and mp4[4:8] == b"ftyp", (status, mp4[:300])
        resumed = srv.json("POST", "/v1/streams", {"state": good}, expect=201)
        got = service_e2e.chunk(srv, resumed["id"], 2)[1]
        a, b = service_e2e.frames_of(got), service_e2e.frames_of(want_next)
        diff = service_e2e.mean_abs_diff(a, b)
        assert diff < 0.5, "the resumed stream's next chunk differs by %.3f levels" % diff
        print("after: /healthz ready, a job made its MP4, the state resumed with the same next chunk (%.3f levels)" % diff)
    finally:
        rc = srv.stop() if srv.proc.poll() is None else srv.proc.returncode
        if failures or rc != 0:
            print("--- server log\n" + srv.text()[-5000:])
    for f in failures[:20]:
        print("FAIL " + f)
    assert not failures, "%d answers were 5xx other than 503" % len(failures)
    assert rc == 0, "the group exited %d" % rc
    print("fuzz_e2e: passed")


if __name__ == "__main__":
    main()
