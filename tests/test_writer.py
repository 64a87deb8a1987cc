"""The writer applies a large committed write in steps, letting other work on the event loop run in between."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from pathlib import Path

from arbiter.server.storage.sql.writer import APPLY_SLICE_SECONDS, Writer
from arbiter.server.storage.sqlite.database import Durability, open_writer


def test_a_large_apply_gives_the_loop_back_between_its_steps(tmp_path: Path) -> None:
    async def scenario() -> None:
        writer = Writer(lambda: open_writer(tmp_path / "a.db", Durability.PROCESS))
        writer.start(asyncio.get_running_loop())
        turns = 0  # how often another task got the loop
        seen: list[int] = []

        async def other_caller() -> None:
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        def apply(result: None) -> Iterator[None]:
            for _ in range(5):
                time.sleep(APPLY_SLICE_SECONDS * 2)  # each step longer than a slice of the loop
                seen.append(turns)
                yield

        other = asyncio.ensure_future(other_caller())
        try:
            await asyncio.wait_for(writer.run(lambda db: None, apply), 30)
        finally:
            other.cancel()
            await writer.close()
        assert len(seen) == 5  # every step ran before the caller was answered
        assert all(later > earlier for earlier, later in itertools.pairwise(seen))

    asyncio.run(scenario())
