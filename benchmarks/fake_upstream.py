"""Runs ``tests/fake_openai.py`` (same flags, same ``PORT=<n>`` line) with TCP_NODELAY on.

The fake binds its listening socket itself, with protocol 0, and asyncio switches Nagle's
algorithm off only on sockets whose protocol is TCP; so every response the fake writes in two
pieces (headers, then body; or one SSE chunk after another) can wait for the client's delayed
ACK, about 40 ms on Linux. Measured here: a router call 50-58 ms instead of about 5 ms, the
first streamed token 42 ms after the stream opened instead of about 1 ms. Every server under
test would inherit those stalls, so the benchmarks start the fake through this file, which
sets TCP_NODELAY on the listening socket (Linux copies it to every accepted connection).

    python benchmarks/fake_upstream.py --port 0 --tokens 50 --delay-ms 5
"""

import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import fake_openai

_bind = getattr(fake_openai, "_bind", None)
if _bind is not None:

    def _bind_nodelay(host: str, port: int) -> socket.socket:
        sock = _bind(host, port)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    fake_openai._bind = _bind_nodelay

if __name__ == "__main__":
    fake_openai.main(sys.argv[1:])
