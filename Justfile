# Everyday recipes. Each shows the plain command it runs, so nothing here
# needs `just` (install it with `npm install -g rust-just`).
set shell := ["bash", "-euo", "pipefail", "-c"]

# list the recipes
default:
    @just --list

# run the broker on the embedded journal: STOMP on 127.0.0.1:61613, data in ./cairn-data
serve *args:
    go run ./cmd/cairn serve {{args}}

# run the cairn binary: `just run journal stats ./cairn-data`
run *args:
    go run ./cmd/cairn {{args}}

# the test suite (what CI runs, less the race pass)
test *args:
    scripts/test {{args}}

# the race detector on the journal packages
race:
    go test -race ./journal/... ./core/... ./gateways/... ./replication/...

# journal benchmarks on this disk: the quick grid, next to its same-run limits
bench dir="./bench-journal":
    go run ./cmd/cairn bench journal --quick --dir {{dir}}

# the full grid (several minutes)
bench-full dir="./bench-journal":
    go run ./cmd/cairn bench journal --dir {{dir}}

# the go test -bench grid of every backend (record size x appenders x sync)
bench-go pattern="." time="1s":
    go test -run '^$' -bench '{{pattern}}' -benchtime {{time}} ./journal/...

# fuzz the journal record decoder, the STOMP frame reader, the selector parser, and replay of snapshots and records
fuzz time="60s":
    go test -run '^$' -fuzz FuzzDecodeFrame -fuzztime {{time}} ./journal
    go test -run '^$' -fuzz FuzzDecodeProjection -fuzztime {{time}} ./core
    go test -run '^$' -fuzz FuzzApplyRecord -fuzztime {{time}} ./core
    go test -run '^$' -fuzz FuzzReader -fuzztime {{time}} ./gateways/stomp
    go test -run '^$' -fuzz FuzzSendAcrossVersions -fuzztime {{time}} ./gateways/stomp
    go test -run '^$' -fuzz FuzzParse -fuzztime {{time}} ./core/selector

# the fault harness: a real cairn serve under receipted load, with kill -9, SIGSTOP, a full disk
# (a tmpfs, as root), a socket flood and a stalled reader; about 40 s (CI runs it)
faults:
    go test -count=1 -run TestFaults -v ./cmd/cairn

# the same for 10 minutes, every fault again and again
faults-soak:
    go test -count=1 -tags soak -timeout 20m -run TestFaults -v ./cmd/cairn

# the gateway tier's fault tests round after round for 10 minutes (CAIRN_SOAK=30m for longer)
gateway-soak:
    go test -count=1 -tags soak -timeout 60m -run TestGatewaySoak -v ./cmd/cairn

# the JetStream journal under faults on a three-node NATS cluster (root: a network namespace); not passing yet
js-faults:
    go test -count=1 -tags jsfaults -timeout 10m -run TestJetStreamClusterFaults -v ./cmd/cairn

# gofmt, go vet and staticcheck (pinned), as .ci/run runs them
lint:
    test -z "$(gofmt -l $(git ls-files '*.go'))" || { gofmt -l $(git ls-files '*.go'); exit 1; }
    go vet ./...
    go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# the same STOMP scenarios against Cairn, ActiveMQ and RabbitMQ (installs them from Debian); writes bench/RESULTS.md
compare:
    bench/compare/run

# scenario (a) against `cairn bench floor` (the least a durable broker must do per message) on this disk
floor dir="./bench-floor" port="61704":
    go build -o /tmp/cairn-floor ./cmd/cairn
    /tmp/cairn-floor bench floor --listen 127.0.0.1:{{port}} --dir {{dir}} & pid=$!; \
    trap 'kill $pid' EXIT; \
    for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/{{port}}) 2>/dev/null && break; sleep 0.1; done; \
    /tmp/cairn-floor bench broker --addr 127.0.0.1:{{port}} --persistent --receipt --count 10000

# a master and two standbys on one journal directory (ports 61613-61615); kill -9 the master and watch
ha dir="./cairn-ha" port="61613":
    deploy/local-ha {{dir}} {{port}}

# the two-tier topology: a master and a standby, two gateways, a demo producer and consumer
tier dir="./cairn-tier" port="61613":
    deploy/local-tier {{dir}} {{port}}

# the gateway tier against the broker alone, side by side (IDLE=18000 adds idle consumers on the gateway)
bench-gateway:
    bench/gateway/run

# who is master of a journal, who waits, and for what
status dir="./cairn-data":
    go run ./cmd/cairn status --data {{dir}}

# takeover time after kill -9 of a master with N pending messages, warm and cold standby
takeover n="1000000" rounds="3":
    bench/takeover/run {{n}} {{rounds}}

# a 5M-message queue paged past a 256 MiB memory limit, beside one that fits in memory
paging n="5000000" limit="256" m="500000":
    bench/paging/run {{n}} {{limit}} {{m}}

# peak RSS against the stated bound with a stalled queue consumer and a stalled topic subscriber
memory limit="256" count="400000":
    bench/memory/run {{limit}} {{count}}
