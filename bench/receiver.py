"""A webhook receiver in a process of its own, for the benchmark: a subscriber is another
service, so it must not share the load generator's interpreter (and its GIL).

    python -m bench.receiver <port file> <records file>

Answers every POST with 204 at once, then records `path, arrival time, position, event
time` as a tab-separated line; the lines reach the records file every 0.1 s. It writes
its port to the port file when it listens, and runs until killed.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def main(port_file: str, records_file: str) -> None:
    lines: list[str] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            arrived = time.time()
            parsed = json.loads(body)
            stamp = datetime.fromisoformat(parsed["timestamp"].replace("Z", "+00:00"))
            line = f"{self.path}\t{arrived}\t{parsed['data']['position']}\t{stamp.timestamp()}\n"
            with lock:
                lines.append(line)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Path(port_file).write_text(str(server.server_address[1]))
    with open(records_file, "a") as out:
        while True:
            time.sleep(0.1)
            with lock:
                batch, lines[:] = lines[:], []
            if batch:
                out.writelines(batch)
                out.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
