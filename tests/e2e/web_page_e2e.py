#!/usr/bin/env python3
"""The web page in headless Chromium (ctest label e2e).

Starts `ltx-worker serve` under mpirun (2 ranks), opens GET / in Debian's
chromium over the DevTools protocol, types a prompt, presses "Start stream",
and waits until a chunk has arrived and the <video> element has played it.
Saves a screenshot as a test artifact. Needs python3-websocket.

usage: web_page_e2e.py LTX_WORKER SCREENSHOT.png MPIEXEC [mpirun flags...]
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # python3-websocket

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import service_e2e  # noqa: E402  (the Server helper)

WORKER, SHOT, MPIEXEC, MPI_FLAGS = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
service_e2e.WORKER, service_e2e.MPIEXEC, service_e2e.MPI_FLAGS = WORKER, MPIEXEC, MPI_FLAGS


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError("no chromium on PATH (Debian: apt-get install chromium)")


class Browser:
    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="ltx-chromium-")
        cmd = [find_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--mute-audio", "--autoplay-policy=no-user-gesture-required",
               "--window-size=1000,1000", "--remote-debugging-port=0", "--user-data-dir=" + self.profile, "about:blank"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + 60
        while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
            if self.proc.poll() is not None or time.time() > deadline:
                raise AssertionError("chromium did not start: " + self.proc.stderr.read().decode(errors="replace")[-2000:])
            time.sleep(0.1)
        port = int(open(port_file).read().split()[0])
        targets = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=10).read())
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise AssertionError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def eval(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError("page script failed: %s" % r["exceptionDetails"])
        return r["result"].get("value")

    def wait_for(self, expression, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.eval(expression):
                return
            time.sleep(0.2)
        raise AssertionError("timed out waiting for " + what + "; page status: " +
                             str(self.eval("document.getElementById('status').textContent")))

    def close(self):
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001
            pass
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def main():
    srv = browser = None
    ok = False
    try:
        srv = service_e2e.Server(2)
        browser = Browser()
        browser.call("Page.enable")
        browser.call("Page.navigate", url="http://127.0.0.1:%d/" % srv.port)
        browser.wait_for("document.readyState === 'complete' && !!document.getElementById('start')", 30, "the page")
        browser.wait_for("document.getElementById('health').textContent.includes('rank(s)')", 30, "the health line")
        assert "random weights" in browser.eval("document.getElementById('health').textContent"), "no built-in model note"
        browser.eval("""(() => {
            const set = (id, v) => { document.getElementById(id).value = v; };
            set('prompt', 'a paper boat on a pond'); set('width', 128); set('height', 96);
            set('steps', 2); set('chunks', 3);
            document.getElementById('start').click();
        })()""")
        browser.wait_for("Number(document.body.dataset.chunksReady) >= 1", 120, "the first chunk")
        browser.wait_for("Number(document.body.dataset.chunksPlayed) >= 1", 60, "a chunk to play")
        browser.wait_for("document.getElementById('player').currentTime > 0", 30, "playback to advance")
        browser.wait_for("document.body.dataset.state === 'done'", 120, "the stream to finish")
        assert browser.eval("document.body.dataset.state") != "error"
        assert browser.eval("document.querySelectorAll('#chunk-links a').length") == 3
        assert browser.eval("document.getElementById('player').videoWidth") == 128
        png = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
        os.makedirs(os.path.dirname(os.path.abspath(SHOT)), exist_ok=True)
        with open(SHOT, "wb") as f:
            f.write(png)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000, len(png)
        print("PASS web page: a stream of 3 chunks played in headless chromium; screenshot " + SHOT)
        rc = srv.stop()
        assert rc == 0, "the group exited %d" % rc
        ok = True
    except Exception as e:  # noqa: BLE001
        print("FAIL web page: %s" % e)
        if srv is not None:
            print("--- server log\n" + srv.text()[-4000:])
    finally:
        if browser is not None:
            browser.close()
        if srv is not None:
            srv.kill()
            if ok:
                os.unlink(srv.log.name)
    print("%d passed, %d failed" % (1 if ok else 0, 0 if ok else 1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
