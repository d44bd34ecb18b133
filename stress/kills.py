"""SIGKILL at random moments of every write path: acknowledged writes lost, glued lines,
leftovers.

For each mode a child process writes as fast as it can, logging every write the API
acknowledged (after the call returned), and is killed with SIGKILL at a random moment.
After each kill the store is opened as the next user would open it (debounced writes of
the dead process are exported then) and checked: every acknowledged write is the current
version of its id or older than it; no line holds two records glued together; temp files
of killed rewrites are counted (git ignores them and compact removes them).

    python -m stress.kills --kills 1000
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

MODES = ("default", "debounced", "batch", "put_many", "merge_put", "compact", "sync_full", "flush")
IDS = 30

CHILD = textwrap.dedent(
    """
    import os, sys
    from git_taskstore import Store
    store_dir, mode, log_path, start = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    ids = int(sys.argv[5])
    debounce = 20 if mode in ("debounced", "flush") else None
    log = open(log_path, "a")

    def ack(pairs):
        log.write("".join(f"{rid} {n}\\n" for rid, n in pairs))
        log.flush()

    with Store.open_dir(store_dir, debounce_ms=debounce) as store:
        tasks = store.collection("t")
        n = start
        print("ready", flush=True)
        while True:
            n += 1
            rid = f"r{n % ids}"
            if mode in ("default", "debounced", "compact", "sync_full", "flush"):
                tasks.put({"id": rid, "n": n, "pad": "x" * (n % 300)})
                ack([(rid, n)])
                if mode == "compact" and n % 7 == 0:
                    store.compact()
                elif mode == "sync_full" and n % 7 == 0:
                    store.sync(full=True)
                elif mode == "flush" and n % 5 == 0:
                    store.flush()
            elif mode == "merge_put":
                tasks.put({"id": rid, "n": n, f"f{n % 5}": n}, merge=True)
                ack([(rid, n)])
            elif mode == "batch":
                pairs = []
                with store.batch():
                    for k in range(20):
                        n += 1
                        tasks.put({"id": f"r{n % ids}", "n": n})
                        pairs.append((f"r{n % ids}", n))
                ack(pairs)
            elif mode == "put_many":
                records = [{"id": f"r{(n + k) % ids}", "n": n + k} for k in range(50)]
                tasks.put_many(records)
                ack([(r["id"], r["n"]) for r in records])
                n += 50
    """
)


@dataclass
class Report:
    kills: Counter[str] = field(default_factory=Counter)
    acknowledged: Counter[str] = field(default_factory=Counter)
    lost: Counter[str] = field(default_factory=Counter)
    glued: Counter[str] = field(default_factory=Counter)
    torn: Counter[str] = field(default_factory=Counter)
    leftovers: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, object]]:
        return [
            {
                "mode": mode,
                "kills": self.kills[mode],
                "acknowledged writes": self.acknowledged[mode],
                "lost": self.lost[mode],
                "glued lines": self.glued[mode],
                "torn lines (kept, reported)": self.torn[mode],
                "temp leftovers": self.leftovers[mode],
            }
            for mode in self.kills
        ]

    @property
    def failed(self) -> bool:
        return bool(sum(self.lost.values()) or sum(self.glued.values()) or self.errors)


def _check(store_dir: Path, log: Path, mode: str, report: Report) -> int:
    """Open the store as the next user would, compare it with the acknowledged writes;
    return the greatest n written so far."""
    from git_taskstore import Store

    acked: dict[str, int] = {}
    top = count = 0
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue  # the log's own torn last line
        rid, n = parts[0], int(parts[1])
        acked[rid] = max(acked.get(rid, 0), n)
        top = max(top, n)
        count += 1
    report.acknowledged[mode] = count
    from git_taskstore.jsonl import reduce_lines

    with Store.open_dir(str(store_dir)):  # exports a dead writer's pending writes
        pass
    # The file is the truth: the cache also lays pending writes over it.
    data = (store_dir / "t.jsonl").read_bytes() if (store_dir / "t.jsonl").exists() else b""
    winners, _ = reduce_lines(data)
    current = {rid: json.loads(w.raw).get("n", 0) for rid, w in winners.items() if not w.deleted}
    # Each id's newest acknowledged write; every earlier one is older than it.
    report.lost[mode] = sum(1 for rid, n in acked.items() if current.get(rid, -1) < n)
    report.glued[mode] = report.torn[mode] = 0
    for raw in data.split(b"\n"):
        if b'}{"' in raw:
            report.glued[mode] += 1
        elif raw.strip():
            try:
                json.loads(raw)
            except ValueError:
                report.torn[mode] += 1
    report.leftovers[mode] = sum(1 for p in store_dir.iterdir() if p.name.endswith(".tmp"))
    return max(top, max(current.values(), default=0))


def run(workdir: Path, *, kills: int, seed: int = 0, modes: tuple[str, ...] = MODES) -> Report:
    rng = random.Random(seed)
    report = Report()
    per_mode = max(1, kills // len(modes))
    for mode in modes:
        store_dir = workdir / mode / ".taskstore"
        store_dir.mkdir(parents=True)
        log = workdir / mode / "acks.log"
        log.touch()
        top = 0
        for _ in range(per_mode):
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(store_dir), mode, str(log), str(top), str(IDS)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert child.stdout is not None
            if child.stdout.readline() != b"ready\n":
                report.errors.append(f"{mode}: {child.communicate()[1].decode()[-300:]}")
                continue
            time.sleep(rng.uniform(0.005, 0.25))
            if child.poll() is not None:
                report.errors.append(f"{mode}: exited by itself: {child.stderr.read()[-300:]!r}")
                continue
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
            if child.stderr is not None:
                child.stderr.close()
            report.kills[mode] += 1
            top = _check(store_dir, log, mode, report) + 1000
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=1000, help="in all, spread over the modes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kills-") as tmp:
        report = run(Path(tmp), kills=args.kills, seed=args.seed)
    rows = report.rows()
    if args.json:
        print(json.dumps({"rows": rows, "errors": report.errors}, indent=2))
    else:
        keys = list(rows[0]) if rows else []
        print("  ".join(f"{k:>14}" for k in keys))
        for row in rows:
            print("  ".join(f"{row[k]!s:>14}" for k in keys))
        total = {k: sum(int(r[k]) for r in rows) for k in keys[1:]}  # type: ignore[call-overload]
        print("  ".join([f"{'all':>14}", *(f"{v!s:>14}" for v in total.values())]))
        for error in report.errors:
            print("error:", error)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
