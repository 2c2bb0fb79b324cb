#!/usr/bin/env python3
"""Sends N requests one after another, each on a new connection, and counts the answers.

    python3 book/scripts/sequential-requests.py 127.0.0.1:7080 3000

Each request is `GET / HTTP/1.1` with `Connection: close`; a request that gets no status line within
the timeout (1 s by default) ends the run, since a server that stops answering will not answer the
next one either. Prints how many were answered. Standard library only.
"""
import argparse
import socket
import sys


def ask(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return conn.recv(64).startswith(b"HTTP/1.1 ")
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("addr", help="HOST:PORT of the server")
    parser.add_argument("count", type=int, help="how many requests to send")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for each answer")
    args = parser.parse_args()
    host, port = args.addr.rsplit(":", 1)
    answered = 0
    for _ in range(args.count):
        if not ask(host, int(port), args.timeout):
            break
        answered += 1
    print(f"{answered} answered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
