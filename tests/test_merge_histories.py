"""Multi-clone histories: the merged state is a function of the set of writes.

Hypothesis draws rounds of work among three clones of one file: each clone writes (edits,
removals of fields, deletes, new lives, as the store writes them: fieldtimes.with_times
and tombstone_after, every write its own time), merges another clone's head, or rebases
its own commits onto another's. Commits form a DAG; a merge's base is the clones' common
ancestor, and several (a criss-cross) are merged into one first, as git's recursive
strategy does; a rebase replays each of its commits as git runs the driver. Then:

- merging the three final heads in any order, or rebasing one onto the others, gives the
  same state;
- without deletes, that state is the model's: each field holds the value of the newest
  write of it (a removal counts), wherever and in whatever order it was merged.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from git_taskstore import jsonl
from git_taskstore.fieldtimes import TIMES_KEY, public, tombstone_after, with_times
from git_taskstore.merge import merge_records

IDS = ("a", "b", "c")
FIELDS = ("f", "g", "h")
VALUES = (0, 1, 2)  # few values: writes set values back (ABA) often
CLONES = 3


@dataclass(frozen=True, repr=False)
class Commit:
    data: bytes
    parents: tuple[Commit, ...] = ()
    own: bool = True  # a commit of writes (not a merge): what a rebase replays

    def ancestors(self) -> set[int]:
        seen: set[int] = set()
        todo = [self]
        while todo:
            commit = todo.pop()
            if id(commit) not in seen:
                seen.add(id(commit))
                todo.extend(commit.parents)
        return seen


@dataclass
class World:
    root: Commit
    heads: list[Commit]
    clock: int = 1000
    # (id, field) -> (time, value or None for removed) of the newest write
    newest: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    deletes: int = 0
    log: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        heads = "\n".join(h.data.decode() for h in self.heads)
        return "World(\n  " + "\n  ".join(self.log) + "\n heads:\n" + heads + ")"


def state(data: bytes) -> dict[str, dict[str, Any]]:
    winners, bad = jsonl.reduce_lines(data)
    assert not bad, bad
    return {rid: public(orjson.loads(w.raw)) for rid, w in winners.items()}


def live(data: bytes) -> dict[str, dict[str, Any]]:
    return {
        rid: {k: v for k, v in r.items() if k != "updated_at"}
        for rid, r in state(data).items()
        if not jsonl.is_tombstone(r)
    }


def merged(base: bytes, ours: bytes, theirs: bytes) -> bytes:
    result = merge_records(base, ours, theirs)
    assert result.clean, result.conflicts  # every write has its own time: no ties
    return result.data


def common_ancestors(one: Commit, two: Commit) -> list[Commit]:
    """The best common ancestors, as git's merge-base --all gives them."""
    common = one.ancestors() & two.ancestors()
    found: dict[int, Commit] = {}
    todo = [one, two]
    while todo:
        commit = todo.pop()
        if id(commit) in common:
            found[id(commit)] = commit
        todo.extend(commit.parents)
    best = [
        c
        for c in found.values()
        if not any(id(c) in o.ancestors() - {id(o)} for o in found.values())
    ]
    return best


def merge_base(one: Commit, two: Commit) -> bytes:
    """The merge base's text; several bases are merged into one first (recursive)."""
    bases = common_ancestors(one, two)
    virtual = bases[0]
    for other in bases[1:]:
        virtual = Commit(
            merged(merge_base(virtual, other), virtual.data, other.data), (virtual, other), False
        )
    return virtual.data


def merge_commits(ours: Commit, theirs: Commit) -> Commit:
    if id(theirs) in ours.ancestors():
        return ours
    if id(ours) in theirs.ancestors():
        return theirs  # a fast-forward
    return Commit(merged(merge_base(ours, theirs), ours.data, theirs.data), (ours, theirs), False)


def rebase(branch: Commit, onto: Commit) -> Commit:
    """Replay the commits of ``branch`` that ``onto`` lacks (merges dropped), oldest
    first, as git rebase does."""
    have = onto.ancestors()
    replay: list[Commit] = []
    todo, seen = [branch], set()
    while todo:
        commit = todo.pop()
        if id(commit) in have or id(commit) in seen:
            continue
        seen.add(id(commit))
        if commit.own:
            replay.append(commit)
        todo.extend(commit.parents)
    # Commits of writes have one parent; oldest first by their place in the chain.
    replay.sort(key=lambda c: len(c.ancestors()))
    head = onto
    for commit in replay:
        data = merged(commit.parents[0].data, head.data, commit.data)
        head = Commit(data, (head,))
    return head


def write(world: World, n: int, draw: Any, deletes: bool) -> None:
    head = world.heads[n]
    current = {rid: orjson.loads(w.raw) for rid, w in jsonl.reduce_lines(head.data)[0].items()}
    rid = draw(st.sampled_from(IDS))
    world.clock += 1
    now = world.clock
    previous = current.get(rid)
    if previous is None or jsonl.is_tombstone(previous):
        record = {"id": rid, "created_at": now, "updated_at": now}
        line = with_times(previous, record)  # a first version, or a new life
        if previous is None:
            for key in FIELDS:
                world.newest.setdefault((rid, key), (0, None))
    elif deletes and draw(st.integers(0, 5)) == 0:
        line = tombstone_after(previous, jsonl.tombstone(rid, now))
        world.deletes += 1
    else:
        record = {k: v for k, v in previous.items() if k != TIMES_KEY}
        for key in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=2, unique=True)):
            value = draw(st.sampled_from((*VALUES, None)))
            if value is None:
                record.pop(key, None)
            else:
                record[key] = value
            if previous.get(key) != value:  # a write of a field is a change of its value
                world.newest[rid, key] = (now, value)
        record["updated_at"] = now
        line = with_times(previous, record)
    world.heads[n] = Commit(head.data + orjson.dumps(line) + b"\n", (head,))
    world.log.append(f"clone {n} writes {orjson.dumps(line).decode()}")


@st.composite
def worlds(draw: Any, deletes: bool) -> World:
    root = Commit(b"")
    world = World(root, [root] * CLONES)
    for _ in range(draw(st.integers(1, 30))):
        n = draw(st.integers(0, CLONES - 1))
        action = draw(st.sampled_from(("write", "write", "write", "merge", "rebase")))
        other = world.heads[draw(st.integers(0, CLONES - 1))]
        if action == "write":
            write(world, n, draw, deletes)
        elif action == "merge":
            world.heads[n] = merge_commits(world.heads[n], other)
            world.log.append(f"clone {n} merges clone {world.heads.index(other)}")
        else:
            world.heads[n] = rebase(world.heads[n], other)
            world.log.append(f"clone {n} rebases onto clone {world.heads.index(other)}")
    return world


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def final_states(world: World) -> list[dict[str, dict[str, Any]]]:
    """The state every way of bringing the three heads together gives."""
    a, b, c = world.heads
    states = []
    for x, y, z in itertools.permutations((a, b, c)):
        states.append(live(merge_commits(merge_commits(x, y), z).data))
        states.append(live(merge_commits(x, merge_commits(y, z)).data))
        states.append(live(rebase(rebase(x, y), z).data))
    return states


@PROPERTY
@given(worlds(deletes=True))
def test_property_any_order_of_merges_and_rebases_gives_one_state(world: World) -> None:
    states = final_states(world)
    differing = [s for s in states if s != states[0]]
    assert not differing, (differing[0], states[0])


@PROPERTY
@given(worlds(deletes=False))
def test_property_every_field_holds_its_newest_write(world: World) -> None:
    states = final_states(world)
    assert all(s == states[0] for s in states)
    final = states[0]
    for (rid, key), (_, value) in world.newest.items():
        if rid in final:
            assert final[rid].get(key) == value, (rid, key, final[rid], world.newest)
