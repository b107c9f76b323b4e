"""Interop check: stomp.py (Debian's python3-stomp) against a Cairn listener.

Usage: interop.py HOST PORT. Exits 0 when every step works, 1 with a message
when one does not. Run by TestStompPyInterop.
"""
import sys
import threading
import time

import stomp


class Collector(stomp.ConnectionListener):
    def __init__(self):
        self.messages = []
        self.errors = []
        self.cond = threading.Condition()

    def on_message(self, frame):
        with self.cond:
            self.messages.append(frame)
            self.cond.notify_all()

    def on_error(self, frame):
        with self.cond:
            self.errors.append(frame)
            self.cond.notify_all()

    def wait(self, n, timeout=5.0):
        deadline = time.time() + timeout
        with self.cond:
            while len(self.messages) < n and not self.errors:
                left = deadline - time.time()
                if left <= 0:
                    break
                self.cond.wait(left)
            if self.errors:
                fail("ERROR frame: %s %s" % (self.errors[0].headers, self.errors[0].body))
            if len(self.messages) < n:
                fail("got %d messages, want %d" % (len(self.messages), n))
            return self.messages[:n]


def fail(msg):
    print("interop:", msg, file=sys.stderr)
    sys.exit(1)


def check(version, cls, host, port):
    if version == "1.0":
        conn = cls([(host, port)])
    else:
        conn = cls([(host, port)], heartbeats=(500, 500))
    col = Collector()
    conn.set_listener("c", col)
    conn.connect(wait=True, headers={"client-id": "interop-" + version})
    queue = "/queue/interop-" + version
    for i in range(3):
        conn.send(queue, "msg-%d" % i, headers={"persistent": "true", "receipt": "r-%s-%d" % (version, i), "colour": "blue"})
    sub_id = "s-" + version
    if version == "1.0":
        conn.subscribe(destination=queue, id=sub_id, ack="client")
    else:
        conn.subscribe(destination=queue, id=sub_id, ack="client-individual")
    msgs = col.wait(3)
    for i, m in enumerate(msgs):
        if m.body != "msg-%d" % i:
            fail("%s: message %d body %r" % (version, i, m.body))
        if m.headers.get("colour") != "blue" or m.headers.get("persistent") != "true":
            fail("%s: headers %r" % (version, m.headers))
        if version == "1.2":
            conn.ack(m.headers["ack"])
        elif version == "1.1":
            conn.ack(m.headers["message-id"], sub_id)
    if version == "1.0":
        conn.ack(msgs[-1].headers["message-id"])  # client mode: cumulative

    # A transaction: two sends appear only on commit.
    tx = conn.begin()
    conn.send(queue, "tx-a", transaction=tx)
    conn.send(queue, "tx-b", transaction=tx)
    time.sleep(0.2)
    if len(col.messages) != 3:
        fail("%s: a transactional send was delivered before the commit" % version)
    conn.commit(tx)
    msgs = col.wait(5)
    if [m.body for m in msgs[3:]] != ["tx-a", "tx-b"]:
        fail("%s: after commit got %r" % (version, [m.body for m in msgs[3:]]))
    for m in msgs[3:]:
        if version == "1.2":
            conn.ack(m.headers["ack"])
        elif version == "1.1":
            conn.ack(m.headers["message-id"], sub_id)
        else:
            conn.ack(m.headers["message-id"])

    conn.unsubscribe(id=sub_id)
    if version != "1.0":
        time.sleep(1.2)  # heart-beats keep the connection up across silence
        if not conn.is_connected():
            fail("%s: connection dropped during heart-beats" % version)
    conn.disconnect(receipt="bye-" + version)
    if col.errors:
        fail("%s: ERROR frame %r" % (version, col.errors[0].headers))


def durable(host, port):
    """A durable topic subscription, ActiveMQ style: CONNECT client-id plus
    SUBSCRIBE activemq.subscriptionName keeps messages while away;
    UNSUBSCRIBE with the name removes it."""
    topic = "/topic/interop.durable"

    def connect(client_id):
        conn = stomp.Connection12([(host, port)])
        col = Collector()
        conn.set_listener("c", col)
        conn.connect(wait=True, headers={"client-id": client_id})
        return conn, col

    sub = {"activemq.subscriptionName": "audit"}
    conn, col = connect("interop-app")
    conn.subscribe(topic, id="d1", ack="client-individual", headers=sub)
    conn.disconnect(receipt="away")  # offline: the broker keeps what comes

    pub, _ = connect("interop-publisher")
    for i in range(3):
        pub.send(topic, "kept-%d" % i, headers={"persistent": "true"}, receipt="p%d" % i)
    conn, col = connect("interop-app")
    conn.subscribe(topic, id="d1", ack="client-individual", headers=sub)
    msgs = col.wait(3)
    if [m.body for m in msgs] != ["kept-0", "kept-1", "kept-2"]:
        fail("durable: got %r" % [m.body for m in msgs])
    for m in msgs:
        conn.ack(m.headers["ack"])
    conn.unsubscribe(id="d1", headers=sub)  # ends the durable subscription
    pub.send(topic, "after", headers={"persistent": "true"}, receipt="p-after")
    conn.disconnect(receipt="gone")
    conn, col = connect("interop-app")
    conn.subscribe(topic, id="d1", ack="client-individual", headers=sub)
    time.sleep(0.3)
    if col.messages or col.errors:
        fail("durable: a removed subscription kept %r" % [m.body for m in col.messages])
    conn.disconnect(receipt="end")
    pub.disconnect(receipt="pub-end")


def selectors(host, port):
    """SUBSCRIBE selector: only matching messages, string headers compared
    as numbers; a bad selector is an ERROR that says where."""
    conn = stomp.Connection12([(host, port)])
    col = Collector()
    conn.set_listener("c", col)
    conn.connect(wait=True)
    q = "/queue/interop.selector"
    conn.subscribe(q, id="s1", ack="auto", headers={"selector": "kind = 'order' AND amount > 100"})
    for kind, amount in (("order", "50"), ("refund", "500"), ("order", "150")):
        conn.send(q, "%s-%s" % (kind, amount), headers={"kind": kind, "amount": amount}, receipt="r-" + amount)
    msgs = col.wait(1)
    time.sleep(0.2)
    if [m.body for m in col.messages] != ["order-150"]:
        fail("selector: got %r" % [m.body for m in col.messages])
    conn.disconnect(receipt="sel-bye")

    conn = stomp.Connection12([(host, port)])
    col = Collector()
    conn.set_listener("c", col)
    conn.connect(wait=True)
    conn.subscribe(q, id="s2", ack="auto", headers={"selector": "amount >> 3"})
    deadline = time.time() + 5
    while not col.errors and time.time() < deadline:
        time.sleep(0.05)
    if not col.errors or col.errors[0].headers.get("code") != "bad-selector" or "position" not in col.errors[0].headers.get("message", ""):
        fail("bad selector: %r" % [e.headers for e in col.errors])


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    for version, cls in (("1.0", stomp.Connection10), ("1.1", stomp.Connection11), ("1.2", stomp.Connection12)):
        check(version, cls, host, port)
    durable(host, port)
    selectors(host, port)
    print("interop: stomp.py", ".".join(map(str, stomp.__version__)), "ok on 1.0, 1.1, 1.2, durable subscriptions, selectors")


if __name__ == "__main__":
    main()
