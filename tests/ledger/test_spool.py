"""The ledger spool file: durable appends, all-or-nothing replay, torn lines skipped."""

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


def test_a_line_torn_by_a_crash_is_skipped_and_later_rows_survive(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    spool = Spool(str(path))
    spool.append(keyed(2))
    with path.open("a") as file:
        file.write('{"key": "k9", "record": {"ts": 1.0, "requ')  # SIGKILL mid-write
    spool.append(keyed(1, start=2))  # starts on a line of its own
    got, counts = replay(spool)
    assert got == keyed(3) and counts == (3, 1)
