#!/usr/bin/env python3
"""Opens N connections to a server and holds them, idle, for a while: the "N idle clients" of the book.

    python3 book/scripts/hold-connections.py 127.0.0.1:7080 1000            # until Ctrl-C
    python3 book/scripts/hold-connections.py 127.0.0.1:7080 100 --seconds 4
    python3 book/scripts/hold-connections.py 127.0.0.1:7080 100 --request   # one GET each first

With --request each connection first sends one keep-alive `GET /` and reads the answer's head, so
the server holds a keep-alive connection rather than one that has not spoken yet. Connections the
kernel completes but the server has not accepted (a full server waits with them in its backlog)
count as held: connect() succeeds once the handshake is done. Standard library only.
"""
import argparse
import socket
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("addr", help="HOST:PORT of the server")
    parser.add_argument("count", type=int, help="how many connections to open")
    parser.add_argument("--seconds", type=float, default=None, help="hold this long (default: until Ctrl-C)")
    parser.add_argument("--request", action="store_true", help="send one GET / on each connection first")
    args = parser.parse_args()
    host, port = args.addr.rsplit(":", 1)

    held = []
    for _ in range(args.count):
        try:
            conn = socket.create_connection((host, int(port)), timeout=5)
        except OSError as error:
            print(f"connect: {error}", file=sys.stderr)
            break
        if args.request:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            head = b""
            try:
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    head += chunk
            except OSError:
                pass
        held.append(conn)
    print(f"holding {len(held)} connections", flush=True)
    try:
        if args.seconds is None:
            while True:
                time.sleep(3600)
        time.sleep(args.seconds)
    except KeyboardInterrupt:
        pass
    for conn in held:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
