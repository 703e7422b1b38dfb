"""The correction both backends apply to a batch's rows whose keys were stored already (last line wins), and the
checkpoint after a batch: plain functions, tested without a database."""

from __future__ import annotations

from guardd.core.batch import HOUR_MS, Row
from guardd.store.api import BatchResult, Checkpoint
from guardd.store.batch_writes import Stored, advanced, correct

T = 500 * HOUR_MS + 60_000  # a minute into hour 500


def row(k: str, ts: int, series: int, cost: int | None, prompt: int = 10, completion: int = 5) -> Row:
    return (k, ts, series, cost, prompt, completion, 0, 0)


def test_a_line_stored_already_as_it_is_counts_once_and_changes_no_event() -> None:
    fix = correct({"g:a": row("g:a", T, 7, 300)}, [Stored("g:a", 41, T, 7, 300)])
    assert fix.hours == {(500, 7): [-300, -1, 0, -10, -5, 0, 0]}
    assert (fix.duplicates, fix.unpriced, fix.updates, fix.seen, fix.priced) == (1, 0, [], ["g:a"], [])


def test_a_changed_line_moves_the_spend_to_its_hour_but_keeps_its_series_and_first_tokens() -> None:
    later = T + 2 * HOUR_MS
    fix = correct({"g:a": row("g:a", later, 8, 500)}, [Stored("g:a", 41, T, 7, 300)])
    assert fix.hours == {
        (500, 7): [-300, -1, 0, 0, 0, 0, 0],
        (502, 7): [500, 1, 0, 0, 0, 0, 0],
        (502, 8): [-500, -1, 0, -10, -5, 0, 0],
    }
    assert fix.updates == [Stored("g:a", 41, later, 7, 500)]
    assert fix.series == {7}


def test_a_second_arrival_in_another_series_is_a_duplicate_that_moves_no_spend() -> None:
    # A Broadcast span of a generation a ledger stored with labels: who spent stays who the first line said.
    fix = correct({"g:a": row("g:a", T, 8, 300)}, [Stored("g:a", 41, T, 7, 300)])
    assert fix.hours == {(500, 8): [-300, -1, 0, -10, -5, 0, 0]}
    assert (fix.duplicates, fix.updates, fix.series, fix.kept) == (1, [], set(), {"g:a": 7})


def test_an_unpriced_event_priced_by_a_later_line_frees_its_waiting_tokens() -> None:
    fix = correct({"g:a": row("g:a", T, 7, 300)}, [Stored("g:a", 41, T, 7, None)])
    assert fix.priced == ["g:a"]
    assert fix.hours[(500, 7)][:3] == [0, -1, -1]


def test_an_unpriced_duplicate_is_not_counted_among_the_unpriced_stored() -> None:
    fix = correct({"g:a": row("g:a", T, 7, None)}, [Stored("g:a", 41, T, 7, None)])
    assert fix.unpriced == 1


def test_settling_adds_the_deltas_to_the_batch_hours_and_the_counts_to_its_result() -> None:
    hours = {(500, 7): [300, 1, 0, 10, 5, 0, 0]}
    result = BatchResult(stored=0, unpriced=0, series={8})
    correct({"g:a": row("g:a", T, 7, 300)}, [Stored("g:a", 41, T, 7, 300)]).settle(hours, result)
    assert hours == {(500, 7): [0, 0, 0, 0, 0, 0, 0]}
    assert (result.duplicates, result.series) == (1, {8})


def test_the_checkpoint_after_a_batch_adds_what_it_stored_and_keeps_the_latest_event_time() -> None:
    cp = Checkpoint("l", "/l.jsonl", 1, 2, "fp", 100, 100, "", 5, 0, T + 1)
    assert advanced(cp, BatchResult(stored=3, max_ts=T)).events == 8
    assert advanced(cp, BatchResult(stored=3, max_ts=T)).last_event_ms == T + 1
    assert advanced(cp, BatchResult(stored=3, max_ts=T + 9)).last_event_ms == T + 9
