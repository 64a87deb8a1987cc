"""The SQLite decision log: a decision read back at once is found, even before the writer has stored it."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from core_helpers import START, make_core, run

from arbiter.server.domain.decisions import DecisionRequest
from arbiter.server.domain.timekeeping import ManualClock
from arbiter.server.storage.sql.decision_log import SqlDecisionLog
from arbiter.server.storage.sql.reader import Reader
from arbiter.server.storage.sql.writer import Writer
from arbiter.server.storage.sqlite.database import Durability, open_reader, open_writer


def test_a_decision_read_while_its_row_is_still_queued_is_found_once_written(tmp_path: Path) -> None:
    async def scenario() -> None:
        t = make_core()  # in-memory: only to make a real decision to keep
        offer = await t.offer("Only")
        decision = await t.decide()
        writer = Writer(lambda: open_writer(tmp_path / "a.db", Durability.PROCESS))
        writer.start(asyncio.get_running_loop())
        reader = Reader(lambda: open_reader(tmp_path / "a.db"))
        log = SqlDecisionLog(writer, reader, ManualClock(START), retention_days=7)
        try:
            writer_free = threading.Event()
            blocker = writer.submit(lambda db: writer_free.wait(30))  # holds the writer thread
            request = DecisionRequest(customer_id="c-1", decision_us=decision.decision_us)
            log.keep("t", decision.decision_id, request, decision.result)  # queued behind it
            reading = asyncio.ensure_future(log.get("t", decision.decision_id))
            # The reader needs no writer: let it answer, wrongly, if it does not wait for the queued row.
            await asyncio.wait([reading], timeout=1.0)
            writer_free.set()
            await blocker
            logged = await reading
            assert logged is not None, "the decision was read before its row was written"
            assert [o.offer_id for o in logged.offers] == [offer.id]
        finally:
            writer_free.set()
            await writer.close()
            reader.close()

    run(scenario())
