#!/usr/bin/env python3
"""Kill PID with SIGKILL, then dial HOST:PORT until a STOMP CONNECTED comes back; print the time."""
import os
import signal
import socket
import sys
import time

pid, addr = int(sys.argv[1]), sys.argv[2]
host, port = addr.rsplit(":", 1)
os.kill(pid, signal.SIGKILL)
t0 = time.monotonic()
while time.monotonic() - t0 < 60:
    try:
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
            if s.recv(9) == b"CONNECTED":
                print("%.3f" % (time.monotonic() - t0))
                sys.exit(0)
    except OSError:
        time.sleep(0.002)
sys.exit("no CONNECTED within 60 s")
