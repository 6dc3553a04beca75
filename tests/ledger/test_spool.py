"""The ledger spool file: durable appends, chunked resumable replay, unreadable lines set aside."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hybridgate.ledger.records import LedgerRecord
from hybridgate.ledger.spool import Keyed, Spool


def keyed(n: int, start: int = 0) -> list[Keyed]:
    return [
        (f"k{i}", LedgerRecord(ts=1.0 + i, request_id=f"r{i}", reasons=["a"]))
        for i in range(start, start + n)
    ]


def replay(spool: Spool) -> tuple[list[Keyed], tuple[int, int]]:
    got: list[Keyed] = []

    async def store(rows: list[Keyed]) -> None:
        got.extend(rows)

    return got, asyncio.run(spool.replay(store))


def test_append_then_replay_returns_every_row_and_empties_the_file(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "s.jsonl"))
    assert not spool.has_rows() and spool.count() == 0
    spool.append(keyed(3))
    spool.append(keyed(2, start=3))
    assert spool.count() == 5
    got, counts = replay(spool)
    assert got == keyed(5) and counts == (5, 0)
    assert not spool.has_rows()


def test_a_failed_replay_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "s.jsonl"))
    spool.append(keyed(4))

    async def refuse(rows: list[Keyed]) -> None:
        raise ConnectionRefusedError("store down")

    with pytest.raises(ConnectionRefusedError):
        asyncio.run(spool.replay(refuse))
    assert spool.count() == 4
    assert replay(spool)[0] == keyed(4)


def test_unreadable_lines_are_moved_aside_counted_and_later_rows_survive(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    spool = Spool(str(path))
    spool.append(keyed(2))
    torn = '{"key": "k9", "record": {"ts": 1.0, "requ'  # SIGKILL mid-write
    newer = '{"key": "k8", "record": {"ts": 1.0, "request_id": "r8", "field_of_a_newer_version": 1}}\n'
    with path.open("a") as file:
        file.write(newer + torn)
    spool.append(keyed(1, start=2))  # starts on a line of its own
    rejected: list[int] = []
    got: list[Keyed] = []

    async def store(rows: list[Keyed]) -> None:
        got.extend(rows)

    counts = asyncio.run(spool.replay(store, rejected.append))
    assert got == keyed(3) and counts == (3, 2) and sum(rejected) == 2
    assert Path(spool.rejected_path).read_text() == newer + torn + "\n"
    assert not spool.has_rows()


def test_a_spool_larger_than_a_chunk_arrives_in_chunks_exactly_once(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "s.jsonl"), chunk=100)
    for start in range(0, 1050, 150):
        spool.append(keyed(150, start=start))
    chunks: list[int] = []
    got: list[Keyed] = []

    async def store(rows: list[Keyed]) -> None:
        chunks.append(len(rows))
        got.extend(rows)

    assert asyncio.run(spool.replay(store)) == (1050, 0)
    assert chunks == [100] * 10 + [50] and got == keyed(1050)
    assert not spool.has_rows() and not Path(spool.offset_path).exists()


def test_a_replay_cut_short_resends_at_most_the_chunk_in_flight(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "s.jsonl"), chunk=100)
    spool.append(keyed(450))
    stored: list[Keyed] = []

    async def fail_on_the_third_chunk(rows: list[Keyed]) -> None:
        if len(stored) == 200:
            raise ConnectionResetError("store went away")
        stored.extend(rows)

    with pytest.raises(ConnectionResetError):
        asyncio.run(spool.replay(fail_on_the_third_chunk))
    assert spool.count() == 250  # the two stored chunks are not waiting any more
    spool.append(keyed(5, start=450))  # an outage spools more meanwhile
    got, counts = replay(spool)  # a restarted process: only the offset file remembers
    assert stored + got == keyed(455) and counts == (255, 0)


def test_a_stale_offset_left_by_a_crash_after_emptying_is_ignored(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "s.jsonl"))
    Path(spool.offset_path).write_text("100000")  # the file was emptied, the offset not yet removed
    spool.append(keyed(3))
    assert spool.count() == 3
    assert replay(spool) == (keyed(3), (3, 0))
