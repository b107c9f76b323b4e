"""Render bench/compare's JSON lines as bench/RESULTS.md."""
import json
import sys
import datetime

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cores = sys.argv[2] if len(sys.argv) > 2 else "?"
runs = {}  # (broker, scenario) -> its runs ((a) has rounds)
for r in rows:
    runs.setdefault((r.get("broker"), r.get("scenario")), []).append(r)
brokers = [b for b in ("cairn", "activemq", "rabbitmq") if any(k[0] == b for k in runs)]
names = {"cairn": "Cairn", "activemq": "ActiveMQ 5.17", "rabbitmq": "RabbitMQ 3.10"}

scen = [
    ("a", "1 producer, 1 consumer, persistent, receipt on every send, 1 KiB", "received_per_sec", "msg/s", "≥ 2.5× ActiveMQ and ≥ 70% of the disk's single-writer fsync rate"),
    ("b", "4 producers, 4 consumers, persistent, no receipts, client-individual acks, 100,000 × 1 KiB", "received_per_sec", "msg/s", "≥ 4× ActiveMQ"),
    ("c", "non-persistent topic, 1 producer, 16 consumers, 256 B", "received_per_sec", "deliveries/s", "≥ 3× ActiveMQ"),
    ("d", "10,000 idle subscribed connections + 1 persistent receipted pair", "kib_per_idle_connection", "KiB of broker RSS per idle connection", "≤ 10 KiB, pair p99 < 5 ms"),
    # The same with go-stomp v3.1.5 clients (cairn bench broker --client go-stomp): what users of a real
    # library get. (b) and (c) with both of go-stomp's channels 2,048 deep; at its defaults (b) deadlocks.
    ("a-go-stomp", "(a) with go-stomp clients", "received_per_sec", "msg/s", "—"),
    ("b-go-stomp", "(b) with go-stomp clients, channels 2,048", "received_per_sec", "msg/s", "—"),
    ("b-go-stomp-defaults", "(b) with go-stomp clients at their defaults", "received", "messages received of 100,000", "—"),
    ("c-go-stomp", "(c) with go-stomp clients, channels 2,048", "received_per_sec", "deliveries/s", "—"),
]


def median(v):
    v = sorted(v)
    if not v:
        return None
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


def vals(b, s, k, of=None):
    return [r[k] for r in runs.get((b, s), []) if k in r and (of is None or r.get("of") == of)]


def val(b, s, k):
    """The median over a scenario's runs (one, or (a)'s rounds)."""
    return median(vals(b, s, k))


def floor_a(b):
    """The median of (a)'s floor in the rounds alternating with b's (a)."""
    return median(vals("floor", "a", "received_per_sec", of=b))


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
out.append("(a) is the median of three rounds, each right after a round against (a)'s floor; the floor and the disk's")
out.append("fsync rate, below the table, were measured beside each broker's (a) in the same run.")
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
    label = "(%s) %s" % (s, desc) if len(s) == 1 else desc
    out.append("| %s | %s | %s | %s | %s |" % (label, unit, " | ".join(cells), ratio, target))
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
floors = {b: floor_a(b) for b in brokers if floor_a(b)}
if floors:
    out.append("")
    out.append("(a)'s floor: `cairn bench floor`, a STOMP responder that only writes each SEND to a pre-zeroed ring with")
    out.append("O_DSYNC (the write Cairn's journal makes), sends the RECEIPT and forwards the MESSAGE, and nothing else: the least")
    out.append("work per message for a broker that confirms a message only once it is on disk. Its rounds beside each broker's:")
    out.append("")
    out.append("| broker | (a) rounds, msg/s | floor rounds beside them, msg/s | broker / floor (medians) |")
    out.append("|---|---|---|---|")
    for b in brokers:
        if b not in floors:
            continue
        mine, fls = vals(b, "a", "received_per_sec"), vals("floor", "a", "received_per_sec", of=b)
        out.append("| %s | %s | %s | %.0f%% |" % (names[b], " / ".join(n0(v) for v in mine), " / ".join(n0(v) for v in fls),
                                                100 * val(b, "a", "received_per_sec") / floors[b]))
    if ca and aa and "cairn" in floors and "activemq" in floors:
        cf, af = ca / floors["cairn"], aa / floors["activemq"]
        out.append("")
        out.append("Read against the floor beside each, Cairn's (a) is %.2f× ActiveMQ's (%.0f%% of its floor against %.0f%%);"
                   % (cf / af, 100 * cf, 100 * af))
        out.append("2.5× ActiveMQ would be %.0f%% of the floor." % (250 * af))
out.append("")
out.append("Lost and duplicated messages (each broker, each scenario; topics count deliveries):")
out.append("")
for b in brokers:
    parts = []
    for s, *_ in scen:
        rs = runs.get((b, s), [])
        errs = [r["error"] for r in rs if r.get("error")]
        lost = sum(r.get("lost", 0) for r in rs) if rs else "?"
        dups = sum(r.get("duplicates", 0) for r in rs) if rs else "?"
        parts.append("(%s) %s lost, %s duplicated%s" % (s, lost, dups, ", error: " + "; ".join(errs) if errs else ""))
    out.append("- %s: %s" % (names[b], "; ".join(parts)))
print("\n".join(out))
