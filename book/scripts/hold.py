#!/usr/bin/env python3
"""Open N keep-alive connections to a server, make one request on each, read the whole answer,
then hold them all idle until standard input closes — the way a browser holds its connections.

    python3 book/scripts/hold.py 127.0.0.1:7080 1000

Written in Python so that it shares no code with the servers it measures. Prints `held N` once
every connection has had its answer; the memory of the server can then be read with
book/scripts/tree-memory.sh.
"""
import socket
import sys


def read_response(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise SystemExit("the server closed the connection before answering")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lengths = [line.split(b":", 1)[1] for line in head.split(b"\r\n")
               if line.lower().startswith(b"content-length:")]
    length = int(lengths[0]) if lengths else 0
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            raise SystemExit("the server closed the connection in the middle of a body")
        body += chunk


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    conns = []
    for _ in range(int(sys.argv[2])):
        conn = socket.create_connection((host, int(port)))
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        read_response(conn)
        conns.append(conn)
    print("held", len(conns), flush=True)
    sys.stdin.read()  # hold them until stdin closes


if __name__ == "__main__":
    main()
