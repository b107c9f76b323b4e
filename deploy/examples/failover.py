#!/usr/bin/env python3
"""Failover with stomp.py (Debian's python3-stomp, 8.x) against a Cairn master/standby group
(or ActiveMQ's shared-file-system master/slave): list every broker's address.

    failover.py produce N HOST:PORT [HOST:PORT ...]   send N persistent messages, each receipted
    failover.py consume N HOST:PORT [HOST:PORT ...]   receive until N distinct messages came

What stomp.py does not do by itself, and this shows:
  * It tries its host list only inside connect(). When a connection drops it calls the listener's
    on_disconnected and stops; nothing reconnects. So on_disconnected tells the main thread, which
    calls connect() again (it walks the whole list; the standby that took over answers).
  * It does not restore subscriptions: subscribe again after every connect().
  * A SEND whose RECEIPT did not come before the drop may or may not have been stored: send it again,
    with the same _AMQ_DUPL_ID header, so that Cairn stores it only once.
  * A broker that dies during connect() (a master killed mid-handshake) can make connect() raise
    OSError or NotConnectedException, not only ConnectFailedException: retry on all three.
  * Its default reconnect_attempts_max is 3, fewer than a takeover may need: use -1 (keep trying)
    with a short sleep cap.
A message delivered but not acked before the drop comes again with redelivered:true.
"""
import queue
import sys
import threading
import time
import uuid

import stomp

DEST = "/queue/failover-example"


class Watcher(stomp.ConnectionListener):
    def __init__(self):
        self.lost = threading.Event()
        self.receipts = set()
        self.cv = threading.Condition()
        self.messages = queue.Queue()
        self.gen = 0  # bumped by every connect(): acks only go back on the connection a message came on

    def on_disconnected(self):
        self.lost.set()
        with self.cv:
            self.cv.notify_all()

    def on_receipt(self, frame):
        with self.cv:
            self.receipts.add(frame.headers.get("receipt-id"))
            self.cv.notify_all()

    def on_message(self, frame):
        self.messages.put((self.gen, frame))


def connect(conn, watcher, after=None):
    """(Re)connect across the host list, then restore what the session needs."""
    while True:
        try:
            conn.connect(wait=True)
            watcher.gen += 1
            watcher.lost.clear()
            if after:
                after()
            return
        except (stomp.exception.ConnectFailedException, stomp.exception.NotConnectedException, OSError):
            # A broker that dies while stomp.py connects (a master killed
            # mid-handshake resets what its listener had accepted) surfaces
            # as any of these, not only ConnectFailedException. The receiver
            # thread closes the dead socket; connect() again opens a new one.
            time.sleep(0.1)


def new_connection(hosts):
    conn = stomp.Connection12(hosts, heartbeats=(2000, 2000), reconnect_attempts_max=-1,
                              reconnect_sleep_initial=0.05, reconnect_sleep_increase=0.5,
                              reconnect_sleep_max=1.0, timeout=2)
    watcher = Watcher()
    conn.set_listener("failover", watcher)
    return conn, watcher


def produce(n, hosts):
    client = uuid.uuid4().hex
    conn, w = new_connection(hosts)
    connect(conn, w)
    for i in range(n):
        body = "py-%d" % i
        attempt = 0
        while True:
            receipt = "r-%d-%d" % (i, attempt)
            try:
                # The same _AMQ_DUPL_ID on every attempt: Cairn stores a resent SEND once.
                conn.send(DEST, body, headers={"persistent": "true", "_AMQ_DUPL_ID": "%s-%d" % (client, i)}, receipt=receipt)
            except (stomp.exception.NotConnectedException, OSError):
                pass
            with w.cv:
                w.cv.wait_for(lambda: receipt in w.receipts or w.lost.is_set(), timeout=5)
                ok = receipt in w.receipts
            if ok:
                break
            attempt += 1  # lost (or no receipt in time): reconnect and send again
            if conn.is_connected():
                try:
                    conn.disconnect()
                except (stomp.exception.NotConnectedException, OSError):
                    pass
            connect(conn, w)
        print("sent", body, flush=True)
    conn.disconnect()


def consume(n, hosts):
    conn, w = new_connection(hosts)

    def subscribe():
        conn.subscribe(DEST, id="1", ack="client-individual", headers={"activemq.prefetchSize": "100"})

    connect(conn, w, subscribe)
    seen = set()
    deadline = time.time() + 120
    while len(seen) < n and time.time() < deadline:
        if w.lost.is_set():
            connect(conn, w, subscribe)
        try:
            gen, frame = w.messages.get(timeout=0.2)
        except queue.Empty:
            continue
        print("got", frame.body, frame.headers.get("redelivered", "false"), flush=True)
        seen.add(frame.body)
        if gen != w.gen:
            continue  # came on a lost connection: the broker redelivers it; its ack id means nothing now
        try:
            conn.ack(frame.headers["ack"])  # STOMP 1.2: ack(id); the second argument would be a transaction
        except (stomp.exception.NotConnectedException, OSError):
            pass  # the broker redelivers it after the reconnection
    conn.disconnect()
    sys.exit(0 if len(seen) >= n else 1)


if __name__ == "__main__":
    mode, n, hosts = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    hosts = [(h.rsplit(":", 1)[0], int(h.rsplit(":", 1)[1])) for h in hosts]
    {"produce": produce, "consume": consume}[mode](n, hosts)
