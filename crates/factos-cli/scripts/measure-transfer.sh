#!/usr/bin/env bash
# Measures `factos import`, `export`, `copy`, `check` and `stats` on
# 1,000,000 events (SQLite and PostgreSQL), with wall time and peak memory
# (/usr/bin/time). Writes about 1.5 GB under $WORK (default /tmp/factos-transfer).
#
#   crates/factos-cli/scripts/measure-transfer.sh            # starts its own PostgreSQL 15 cluster (as root)
#   PG_URL=postgres://user@host/db crates/factos-cli/scripts/measure-transfer.sh
#
# Settings: SQLite synchronous=FULL (the default); the PostgreSQL cluster the
# script starts has the server's defaults (fsync on, synchronous_commit on).
set -euo pipefail
cd "$(dirname "$0")/../../.."
WORK=${WORK:-/tmp/factos-transfer}
EVENTS=${EVENTS:-1000000}
rm -rf "$WORK" && mkdir -p "$WORK"

cargo build --release -q -p factos-cli
F=$PWD/target/release/factos

if [ -z "${PG_URL:-}" ]; then
    BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    chown postgres "$WORK"
    runuser -u postgres -- "$BIN/initdb" -D "$WORK/pg" -U postgres >/dev/null
    runuser -u postgres -- "$BIN/pg_ctl" -D "$WORK/pg" -o "-k $WORK -c listen_addresses=''" -l "$WORK/pg.log" -w start >/dev/null
    trap 'runuser -u postgres -- "$BIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null' EXIT
    PG_URL="postgres:///postgres?host=$WORK&user=postgres"
fi

# Records as an application's export would hold them: 10,000 streams, four
# event types, two tags, ~200-byte JSON payloads.
python3 - "$WORK/input.jsonl" "$EVENTS" <<'PY'
import datetime, random, sys, uuid
random.seed(7)
heads = {}
with open(sys.argv[1], "w") as f:
    for p in range(1, int(sys.argv[2]) + 1):
        s = random.randrange(10000)
        r = heads.get(s, -1) + 1
        heads[s] = r
        t = ("OrderPlaced", "ItemAdded", "OrderShipped", "PaymentReceived")[p % 4]
        sec, micro = divmod(1_700_000_000_000_000 + p * 1000, 1_000_000)
        ts = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + ".%06dZ" % micro
        i = uuid.UUID(int=random.getrandbits(128), version=4)
        f.write('{"position":%d,"id":"%s","stream":"order-%d","revision":%d,"type":"%s","version":1,'
                '"tags":["customer:%d","order:%d"],"metadata":{"correlation":"%s"},"recordedAt":"%s",'
                '"data":{"order":%d,"sku":"SKU-%05d","quantity":%d,"price":%d.%02d,"note":"a typical small payload"}}\n'
                % (p, i, s, r, t, s % 997, s, i.hex[:12], ts, s, p % 50000, p % 7 + 1, p % 500, p % 100))
PY
cd "$WORK"
echo "input: $EVENTS events, $(du -h input.jsonl | cut -f1)"
m() { local label=$1; shift; /usr/bin/time -f "$label: %e s, peak RSS %M KB" "$@" 2>&1 >/dev/null | grep -v '^created\|^exported\|^imported'; }
m "import into SQLite" "$F" import --database src.db --input input.jsonl
m "export from SQLite" "$F" export --database src.db --output out-sqlite.jsonl
cmp input.jsonl out-sqlite.jsonl && echo "SQLite export == input, byte for byte"
m "check on SQLite" "$F" check --database src.db
m "stats on SQLite" "$F" stats --database src.db
m "copy SQLite -> PostgreSQL (with verification)" "$F" copy --from src.db --to "$PG_URL" --to-schema copied
m "export from PostgreSQL" "$F" export --database-url "$PG_URL" --schema copied --output out-pg.jsonl
cmp input.jsonl out-pg.jsonl && echo "PostgreSQL export == input, byte for byte"
m "import into PostgreSQL" "$F" import --database-url "$PG_URL" --schema imported --input input.jsonl
m "check on PostgreSQL" "$F" check --database-url "$PG_URL" --schema imported
m "stats on PostgreSQL" "$F" stats --database-url "$PG_URL" --schema imported
