"""A bounded load on the HTTP API: ``python benchmarks/load.py [--clients N] [--questions M]``.

Starts ``rag serve`` on a free loopback port, on a copy of ``corpus/`` in a temporary folder
(the index is built there on first run), with a random ``RAG_API_KEY`` (so every request passes
the gate's key check) and no rate limit; or targets a running server with ``--url`` (and
``--key``, ``--pid`` for its memory). N clients in parallel threads each ask M questions (the
chat's example questions, in turn) with ``POST /api/ask``. ``--oversized K`` then sends K
questions of 64 MiB (chunked, as issue 10's attack did) to the chat's queue, each of which must be
refused (413). Prints requests per second, latency p50/p95, the error count and the server's
resident memory before and after; exits 1 when any request failed. Timings are figures to read,
not to assert.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.metrics import percentile  # noqa: E402
from rag.ui import EXAMPLES  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int | None) -> str:
    """The resident memory (Linux /proc) of the process and its children (the answering
    workers of ``--workers``), or "n/a"."""
    try:
        children = [int(c) for t in Path(f"/proc/{pid}/task").iterdir()
                    for c in (t / "children").read_text().split()]
        total = 0
        for process in [pid, *children]:
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return f"{total / 1024:.0f} MiB"
    except (OSError, TypeError, ValueError):
        return "n/a"


def ask(url: str, key: str, question: str, timeout: float = 120) -> tuple[int, float]:
    """``(status, seconds)`` of one question; status 0 when the connection failed, -1 when a 200
    did not hold an answer."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    request = urllib.request.Request(url + "/api/ask", json.dumps({"question": question}).encode(), headers)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = response.status, response.read()
        if not json.loads(body).get("answer", "").strip():
            status = -1
    except urllib.error.HTTPError as error:
        status = error.code
    except (OSError, ValueError):
        status = 0
    return status, time.perf_counter() - started


def oversized(url: str, key: str, mib: int = 64) -> int:
    """The status of one chunked POST of a ``mib`` MiB question to the chat's queue, sent in full
    unless the server stops reading; 0 when the connection failed before an answer."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    chunk = b"x" * (1 << 20)
    try:
        connection.putrequest("POST", "/gradio_api/queue/join")
        for name, value in {"Content-Type": "application/json", "Transfer-Encoding": "chunked",
                            **({"Authorization": f"Bearer {key}"} if key else {})}.items():
            connection.putheader(name, value)
        connection.endheaders()
        try:
            for piece in [b'{"data": ["'] + [chunk] * mib + [b'", null], "fn_index": 0, "session_hash": "load"}']:
                connection.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            connection.send(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed before the end: the answer is read below
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        connection.close()


def wait_ready(url: str, process: subprocess.Popen | None, deadline: float) -> None:
    while True:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        if time.time() > deadline:
            raise SystemExit("the server was not ready in time")
        time.sleep(0.5)


def start_server(work: Path, key: str, workers: int) -> tuple[subprocess.Popen, str]:
    shutil.copytree(ROOT / "corpus", work / "corpus")
    port = free_port()
    env = {**os.environ, "RAG_CORPUS_DIR": str(work / "corpus"), "RAG_STORE_DIR": str(work / "vectorstore"),
           "RAG_API_KEY": key, "RAG_RATE_LIMIT": "0", "RAG_HOST": "127.0.0.1", "RAG_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT), "RAG_WORKERS": str(workers)}
    log = open(work / "server.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve"], cwd=work, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4, help="parallel clients (default 4)")
    parser.add_argument("--questions", type=int, default=5, help="questions per client (default 5)")
    parser.add_argument("--url", help="a running server (default: start one on loopback)")
    parser.add_argument("--key", default="", help="its RAG_API_KEY, with --url")
    parser.add_argument("--pid", type=int, help="its process id, with --url, for its memory")
    parser.add_argument("--oversized", type=int, default=0, metavar="K",
                        help="then send K questions of 64 MiB to the chat's queue (each must get 413)")
    parser.add_argument("--workers", type=int, default=1,
                        help="answering processes of the server started (RAG_WORKERS; default 1)")
    parser.add_argument("--ready-timeout", type=float, default=600, help="seconds to wait for /healthz")
    args = parser.parse_args()
    if args.clients < 1 or args.questions < 1:
        parser.error("--clients and --questions must be at least 1")

    work, process = None, None
    url, key, pid = args.url, args.key, args.pid
    if url is None:
        work = Path(tempfile.mkdtemp(prefix="rag-load-"))
        key = secrets.token_urlsafe(24)
        process, url = start_server(work, key, args.workers)
        pid = process.pid
    try:
        wait_ready(url.rstrip("/"), process, time.time() + args.ready_timeout)
        url = url.rstrip("/")
        warm = ask(url, key, EXAMPLES[0])  # first-use caches out of the figures (every worker's)
        for example in EXAMPLES[1:1 + 4 * args.workers]:
            ask(url, key, example)
        rss_before = rss_mib(pid)
        results: list[tuple[int, float]] = []
        lock = threading.Lock()

        def client(n: int) -> None:
            for i in range(args.questions):
                outcome = ask(url, key, EXAMPLES[(n + i) % len(EXAMPLES)])
                with lock:
                    results.append(outcome)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        rss_after = rss_mib(pid)
        refused = [oversized(url, key) for _ in range(args.oversized)]
        rss_last = rss_mib(pid)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)

    latencies = [1000 * seconds for status, seconds in results]
    errors = [status for status, _ in results if status != 200] + ([warm[0]] if warm[0] != 200 else [])
    print(f"{args.clients} clients x {args.questions} questions = {len(results)} requests to {url}/api/ask "
          f"in {elapsed:.1f} s: {len(results) / elapsed:.1f} req/s")
    print(f"latency ms: p50 {statistics.median(latencies):.0f}  p95 {percentile(latencies, 95):.0f}  "
          f"max {max(latencies):.0f}")
    print(f"server memory (RSS): before {rss_before}, after {rss_after}")
    if args.oversized:
        errors += [status for status in refused if status != 413]
        print(f"{args.oversized} questions of 64 MiB to /gradio_api/queue/join: statuses {sorted(set(refused))}; "
              f"server memory (RSS) after them {rss_last}")
    print(f"errors {len(errors)}" + (f" (statuses {sorted(set(errors))})" if errors else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
