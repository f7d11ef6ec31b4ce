"""Starting `saem serve` for the bench scripts (run-crash, run-load)."""
import socket, subprocess, time, urllib.request


def start(saem, db):
    """`saem serve --no-encoder` on db at a free loopback port, once /healthz answers: (process, url)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    server = subprocess.Popen([saem, "serve", "--db", db, "--port", str(port), "--no-encoder"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1)
            break
        except Exception:
            time.sleep(0.02)
    return server, url
