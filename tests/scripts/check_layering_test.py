#!/usr/bin/env python3
"""scripts/check-layering must pass on the tree and fail on each kind of
violation: an include against the layer order, a cycle between pipeline/
sub-folders, and two modules that include each other. Builds small trees in a
temporary folder; standard library only."""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECK = os.path.join(ROOT, "scripts", "check-layering")


def run(tree):
    with tempfile.TemporaryDirectory() as d:
        for path, text in tree.items():
            os.makedirs(os.path.dirname(os.path.join(d, path)), exist_ok=True)
            with open(os.path.join(d, path), "w") as f:
                f.write(text)
        p = subprocess.run([sys.executable, CHECK, d], capture_output=True, text=True)
        return p.returncode, p.stdout


def inc(*headers):
    return "".join(f'#include "{h}"\n' for h in headers)


GOOD = {
    "common/status.h": "",
    "dist/world.h": inc("common/status.h"),
    "pipeline/io/file.h": inc("dist/world.h"),
    "pipeline/runtime/run.h": inc("pipeline/io/file.h"),
    "service/api.cpp": inc("pipeline/runtime/run.h", "<boost/beast.hpp>"),
    "tests/t.cpp": inc("service/api.h", "launch/main.h"),
}

CASES = {
    "upward include": ({"dist/world.cpp": inc("pipeline/io/file.h")}, "dist/ must not depend on pipeline/"),
    "layer includes a test": ({"service/x.cpp": inc("tests/t.h")}, "must not include tests/"),
    "sub-folder cycle": ({"pipeline/io/file.cpp": inc("pipeline/runtime/run.h")}, "pipeline/ sub-folders include each other"),
    "module cycle": ({"common/a.h": inc("common/b.h"), "common/b.cpp": inc("common/a.h")}, "modules include each other"),
}


def main():
    failures = 0
    code, out = run(GOOD)
    if code != 0:
        print("FAIL: a clean tree was refused:\n" + out)
        failures += 1
    for name, (extra, want) in CASES.items():
        tree = dict(GOOD)
        tree.update(extra)
        code, out = run(tree)
        if code == 0 or want not in out:
            print(f"FAIL: {name}: exit {code}, expected a line with '{want}':\n{out}")
            failures += 1
        else:
            print(f"ok: {name}: {out.splitlines()[0]}")
    code, out = subprocess.run([sys.executable, CHECK, ROOT], capture_output=True, text=True).returncode, None
    if code != 0:
        print("FAIL: the project tree breaks its layering (run scripts/check-layering)")
        failures += 1
    print(f"{len(CASES) + 2 - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
