"""Writers racing git in one work tree: acknowledged writes lost, git failures, phantom rows.

Writer processes put records as fast as they can and log each acknowledged write; a reader
lists beside them; meanwhile a loop runs ``git add/commit``, ``git checkout -b X``, a
commit on X, ``git checkout main``, ``git merge X``, ``git reset`` and ``git stash; git
stash pop`` in the same work tree. At the end, every
acknowledged write must be in git's keeping: in the work-tree file, in a commit or in a
stash (a ``stash pop`` that finds the file changed since the stash leaves the stash, as
git does). The cache must list exactly what a rebuild from the file lists.

    python -m stress.git_race --seconds 60 --writers 6
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

COLLECTION = "t"
IDS_PER_WRITER = 40

WRITER = textwrap.dedent(
    """
    import os, sys
    from git_taskstore import Store
    store_dir, me, log_path, stop = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    ids = int(sys.argv[5])
    seq = 0
    with Store.open_dir(store_dir) as store, open(log_path, "a") as log:
        tasks = store.collection("t")
        while not os.path.exists(stop):
            seq += 1
            rid = f"{me}-{seq % ids}"
            try:
                tasks.put({"id": rid, "n": seq, "by": me})
            except Exception as exc:
                log.write(f"ERR {type(exc).__name__} {str(exc)[:200]}\\n")
                log.flush()
                continue
            log.write(f"ACK {rid} {seq}\\n")
            log.flush()
    """
)

READER = textwrap.dedent(
    """
    import os, sys
    from git_taskstore import Store
    store_dir, log_path, stop = sys.argv[1], sys.argv[2], sys.argv[3]
    reads = 0
    with Store.open_dir(store_dir) as store, open(log_path, "a") as log:
        tasks = store.collection("t")
        while not os.path.exists(stop):
            try:
                tasks.list()
                reads += 1
            except Exception as exc:
                log.write(f"ERR {type(exc).__name__} {str(exc)[:200]}\\n")
        log.write(f"READS {reads}\\n")
    """
)


@dataclass
class Report:
    seconds: float
    writers: int
    acknowledged: int = 0
    lost: int = 0
    lost_examples: list[str] = field(default_factory=list)
    writer_errors: Counter[str] = field(default_factory=Counter)
    reader_errors: Counter[str] = field(default_factory=Counter)
    reads: int = 0
    git_runs: Counter[str] = field(default_factory=Counter)
    git_failures: Counter[str] = field(default_factory=Counter)
    phantom_rows: int = 0
    missing_rows: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "seconds": self.seconds,
            "writers": self.writers,
            "acknowledged writes": self.acknowledged,
            "acknowledged writes lost": self.lost,
            "lost examples": self.lost_examples,
            "writer errors": dict(self.writer_errors),
            "reads": self.reads,
            "reader errors": dict(self.reader_errors),
            "git runs": dict(self.git_runs),
            "git failures": dict(self.git_failures),
            "cache rows no file holds": self.phantom_rows,
            "file records the cache lacks": self.missing_rows,
        }


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)


def _failure_kind(done: subprocess.CompletedProcess[str]) -> str:
    text = done.stderr + done.stdout
    if "unable to create file" in text or "File exists" in text:
        return "unable to create file (File exists)"
    if "would be overwritten" in text:
        return "refused: local changes would be overwritten (expected)"
    quiet = ("nothing to commit", "nothing added to commit", "No local changes", "No stash entries")
    if any(words in text for words in quiet):
        return "nothing to do (expected)"
    return text.strip().splitlines()[-1][:120] if text.strip() else f"exit {done.returncode}"


def _expected(kind: str) -> bool:
    return kind.endswith("(expected)")


def make_repo(repo: Path) -> Path:
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    subprocess.run(
        [sys.executable, "-m", "git_taskstore", "init"],
        cwd=repo,
        check=True,
        capture_output=True,
    )
    (repo / "README").write_text("race\n")
    (repo / "notes").write_text("round 0\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    return repo / ".taskstore"


def git_loop(repo: Path, deadline: float, report: Report, *, stash: bool) -> None:
    """Rounds of commit, a branch with a commit of its own, checkout, merge, reset and
    stash, each run while the writers write."""
    round_ = 0
    while time.monotonic() < deadline:
        round_ += 1
        branch = f"b{round_}"
        steps: list[tuple[str, tuple[str, ...]]] = [
            ("add", ("add", "-A")),
            ("commit", ("commit", "-q", "-m", f"round {round_}")),
            ("checkout -b", ("checkout", "-q", "-b", branch)),
            ("commit on the branch", ("commit", "-q", "-m", f"notes {round_}", "--", "notes")),
            ("checkout main", ("checkout", "-q", "main")),
            ("merge", ("merge", "-q", "--no-edit", branch)),
            ("reset", ("reset", "-q")),
        ]
        if stash:
            steps += [("stash", ("stash", "-q")), ("stash pop", ("stash", "pop", "-q"))]
        for name, args in steps:
            if name == "commit on the branch":
                (repo / "notes").write_text(f"round {round_}\n")
                git(repo, "add", "notes")
            done = git(repo, *args)
            report.git_runs[name] += 1
            if done.returncode != 0:
                kind = _failure_kind(done)
                report.git_failures[f"{name}: {kind}"] += 1


def kept_lines(repo: Path) -> set[tuple[str, int]]:
    """(id, n) of every line of the collection in the work tree, any commit, any stash."""
    path = f".taskstore/{COLLECTION}.jsonl"
    commits = set(git(repo, "rev-list", "--all").stdout.split())
    stashes = git(repo, "reflog", "show", "--format=%H", "refs/stash").stdout.split()
    commits.update(stashes)
    commits.update(f"{c}^2" for c in stashes)  # a stash's index commit
    request = "".join(f"{c}:{path}\n" for c in sorted(commits))
    done = subprocess.run(
        ["git", "cat-file", "--batch"], cwd=repo, input=request.encode(), capture_output=True
    )
    blobs = [done.stdout]
    work = repo / path
    if work.exists():
        blobs.append(work.read_bytes())
    found: set[tuple[str, int]] = set()
    for blob in blobs:
        for raw in blob.split(b"\n"):
            if not raw.startswith(b"{"):
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict) and "n" in record:
                found.add((record["id"], record["n"]))
    return found


def run(workdir: Path, *, seconds: float, writers: int, stash: bool = True) -> Report:
    report = Report(seconds=seconds, writers=writers)
    repo = workdir / "repo"
    store_dir = make_repo(repo)
    stop = workdir / "stop"
    logs = [workdir / f"writer-{k}.log" for k in range(writers)]
    reader_log = workdir / "reader.log"
    writer = [sys.executable, "-c", WRITER, str(store_dir)]
    procs = [
        subprocess.Popen([*writer, f"w{k}", str(log), str(stop), str(IDS_PER_WRITER)])
        for k, log in enumerate(logs)
    ]
    procs.append(
        subprocess.Popen([sys.executable, "-c", READER, str(store_dir), str(reader_log), str(stop)])
    )
    try:
        git_loop(repo, time.monotonic() + seconds, report, stash=stash)
    finally:
        stop.touch()
        for proc in procs:
            proc.wait(timeout=120)
    acked: dict[str, list[int]] = {}
    for log in logs:
        for line in log.read_text().splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "ACK":
                rid, seq = rest.split()
                acked.setdefault(rid, []).append(int(seq))
            else:
                report.writer_errors[rest.split(" ")[0]] += 1
    for line in reader_log.read_text().splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "READS":
            report.reads = int(rest)
        else:
            report.reader_errors[rest.split(" ")[0]] += 1
    kept = kept_lines(repo)
    for rid, seqs in acked.items():
        report.acknowledged += len(seqs)
        for seq in seqs:
            if (rid, seq) not in kept:
                report.lost += 1
                if len(report.lost_examples) < 5:
                    report.lost_examples.append(f"{rid} n={seq}")
    _compare_cache(store_dir, report)
    return report


def _compare_cache(store_dir: Path, report: Report) -> None:
    from git_taskstore import Store

    with Store.open_dir(str(store_dir)) as store:
        tasks = store.collection(COLLECTION)
        cached = {(r["id"], r.get("n")) for r in tasks.list()}
        store.sync(full=True)
        rebuilt = {(r["id"], r.get("n")) for r in tasks.list()}
    report.phantom_rows = len(cached - rebuilt)
    report.missing_rows = len(rebuilt - cached)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--writers", type=int, default=6)
    parser.add_argument("--no-stash", action="store_true", help="leave git stash out of the loop")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="git-race-") as tmp:
        report = run(Path(tmp), seconds=args.seconds, writers=args.writers, stash=not args.no_stash)
    data = report.as_dict()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            print(f"{key:32} {value}")
    bad = report.lost or report.phantom_rows or report.missing_rows or report.writer_errors
    unexpected = [k for k in report.git_failures if not _expected(k.split(": ", 1)[1])]
    return 1 if bad or unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
