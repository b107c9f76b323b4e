"""Render bench/compare's JSON lines as bench/RESULTS.md."""
import json
import sys
import datetime

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cores = sys.argv[2] if len(sys.argv) > 2 else "?"
by = {(r.get("broker"), r.get("scenario")): r for r in rows}
brokers = [b for b in ("cairn", "activemq", "rabbitmq") if any(k[0] == b for k in by)]
names = {"cairn": "Cairn", "activemq": "ActiveMQ 5.17", "rabbitmq": "RabbitMQ 3.10"}

scen = [
    ("a", "1 producer, 1 consumer, persistent, receipt on every send, 1 KiB", "received_per_sec", "msg/s", "≥ 2.5× ActiveMQ and ≥ 70% of the disk's single-writer fsync rate"),
    ("b", "4 producers, 4 consumers, persistent, no receipts, client-individual acks, 100,000 × 1 KiB", "received_per_sec", "msg/s", "≥ 4× ActiveMQ"),
    ("c", "non-persistent topic, 1 producer, 16 consumers, 256 B", "received_per_sec", "deliveries/s", "≥ 3× ActiveMQ"),
    ("d", "10,000 idle subscribed connections + 1 persistent receipted pair", "kib_per_idle_connection", "KiB of broker RSS per idle connection", "≤ 10 KiB, pair p99 < 5 ms"),
]


def val(b, s, k):
    r = by.get((b, s))
    if r is None or k not in r:
        return None
    return r[k]


def fmt(v, k):
    if v is None:
        return "—"
    if k.endswith("_ms"):
        return "%.2f" % v
    if k == "kib_per_idle_connection":
        return "%.1f" % v
    return "{:,.0f}".format(v)


out = []
out.append("# Cairn beside ActiveMQ and RabbitMQ")
out.append("")
out.append("Written by `bench/compare/run` on %s (%s cores). Each broker ran alone on loopback with a fresh data" % (datetime.date.today(), cores))
out.append("directory, driven by `cairn bench broker` (its own lean STOMP client, on the same machine). Before (a), (b) and (c)")
out.append("each broker was warmed up by a shorter, unrecorded pass of the same three (a JVM compiles its hot paths in the")
out.append("first thousands of messages). One run; the machine is shared and noisy, so read ratios, not absolutes.")
out.append("The disk's fsync rate and (a)'s floor, below the table, were measured in the same run.")
out.append("")
head = "| scenario | measure | " + " | ".join(names[b] for b in brokers) + " | Cairn / ActiveMQ | target |"
out.append(head)
out.append("|" + "---|" * (4 + len(brokers)))
for s, desc, key, unit, target in scen:
    cells = [fmt(val(b, s, key), key) for b in brokers]
    c, a = val("cairn", s, key), val("activemq", s, key)
    ratio = "—"
    if c is not None and a:
        ratio = "%.2f×" % (c / a)
    out.append("| (%s) %s | %s | %s | %s | %s |" % (s, desc, unit, " | ".join(cells), ratio, target))
    if s in ("a", "d"):
        cells = [fmt(val(b, s, "p99_ms"), "p99_ms") for b in brokers]
        out.append("| (%s) | p99 latency, ms | %s | | |" % (s, " | ".join(cells)))
disk = {}  # broker -> {"before": rate, "after": rate}
for r in rows:
    if r.get("broker") == "disk" and "appends_per_sec" in r:
        disk.setdefault(r.get("of", r.get("before", "cairn")), {})[r.get("when", "before")] = r["appends_per_sec"]


def disk_mean(b):
    v = list(disk.get(b, {}).values())
    return sum(v) / len(v) if v else None


ca = val("cairn", "a", "received_per_sec")
aa = val("activemq", "a", "received_per_sec")
fl = val("floor", "a", "received_per_sec")


def n0(v):
    return "{:,.0f}".format(v)


if disk:
    out.append("")
    out.append("This disk's single-writer fsync rate (`cairn bench journal`'s bare loop: one 1 KiB write and one fdatasync at a")
    out.append("time on a growing file), measured right before and right after each broker's (a), since it drifts from minute to")
    out.append("minute: " + "; ".join("%s %s" % (names.get(k, k), " and ".join("%s/s %s" % (n0(r), w) for w, r in v.items()))
                                 for k, v in disk.items()) + ".")
    if ca and disk_mean("cairn"):
        out.append("Cairn's (a) is %.0f%% of the rate measured next to it (the mean of before and after)." % (100 * ca / disk_mean("cairn")))
if fl:
    out.append("")
    out.append("(a)'s floor in this run: %s msg/s (p99 %.2f ms) from `cairn bench floor`, a STOMP responder that only writes" % (n0(fl), val("floor", "a", "p99_ms") or 0))
    out.append("each SEND to a pre-zeroed ring with O_DSYNC (the write Cairn's journal makes), sends the RECEIPT and forwards the")
    out.append("MESSAGE, and nothing else: the least work per message for a broker that confirms a message only once it is on disk.")
    line = "Cairn's (a) is %.0f%% of the floor." % (100 * ca / fl) if ca else ""
    if aa:
        line += " 2.5× ActiveMQ's (a) would be %s msg/s, %.0f%% of the floor." % (n0(2.5 * aa), 100 * 2.5 * aa / fl)
    out.append(line.strip())
out.append("")
out.append("Lost and duplicated messages (each broker, each scenario; topics count deliveries):")
out.append("")
for b in brokers:
    parts = []
    for s, *_ in scen:
        r = by.get((b, s), {})
        err = r.get("error")
        parts.append("(%s) %s lost, %s duplicated%s" % (s, r.get("lost", "?"), r.get("duplicates", "?"), ", error: " + err if err else ""))
    out.append("- %s: %s" % (names[b], "; ".join(parts)))
print("\n".join(out))
