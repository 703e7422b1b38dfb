from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from guardd.core.alerts import Policy, step
from guardd.core.budgets import Budget
from guardd.core.evaluate import WindowSpend, evaluate, overridden
from guardd.core.money import parse_money
from guardd.core.periods import window_at
from guardd.core.switch import Override, decide

UTC_ZONE = ZoneInfo("UTC")
BUDGET = Budget("team", daily=parse_money(10), warn_at=(50.0, 80.0, 90.0))
NOON = datetime(2026, 11, 21, 12, tzinfo=UTC)


def ev(spent, now=NOON, budget=BUDGET):
    window = window_at("daily", UTC_ZONE, now)
    return evaluate(budget, [WindowSpend(window, budget.daily, parse_money(spent))], now)


DEFAULT_POLICY = Policy()


def run(spends, policy=DEFAULT_POLICY):
    state, announced = {}, []
    for spent, now in spends:
        state, ann = step(state, ev(spent, now), policy, now)
        announced.append(ann)
    return announced


def test_each_threshold_is_announced_once():
    anns = run([(5, NOON), (5.5, NOON + timedelta(minutes=1)), (8.5, NOON + timedelta(minutes=2))])
    assert [a.changes[0].threshold if a else None for a in anns] == [50.0, None, 80.0]


def test_a_jump_names_only_the_highest_threshold():
    (ann,) = run([(9.5, NOON)])
    assert [c.threshold for c in ann.changes] == [90.0]


def test_a_trip_inhibits_thresholds_and_repeats_after_repeat_every():
    anns = run([(10, NOON), (10, NOON + timedelta(hours=1)), (10, NOON + timedelta(hours=4, minutes=1))])
    assert anns[0].changes[0].what == "trip" and len(anns[0].changes) == 1
    assert anns[1] is None
    assert anns[2].changes[0].what == "repeat"


def test_persisted_state_means_no_repeat_after_a_restart_but_news_are_announced():
    state, _ = step({}, ev(6), Policy(), NOON)
    restarted_state = dict(state)  # what the store gives back after a restart
    _, same = step(restarted_state, ev(6), Policy(), NOON + timedelta(minutes=5))
    _, news = step(restarted_state, ev(9.2), Policy(), NOON + timedelta(minutes=5))
    assert same is None
    assert news.changes[0].threshold == 90.0


def test_a_window_reset_is_announced_when_send_resolved():
    state, _ = step({}, ev(9), Policy(), NOON)
    _, ann = step(state, ev(0, NOON + timedelta(days=1)), Policy(), NOON + timedelta(days=1))
    assert ann.changes[0].what == "reset"
    _, quiet = step(state, ev(0, NOON + timedelta(days=1)), Policy(send_resolved=False), NOON + timedelta(days=1))
    assert quiet is None


def test_silence_keeps_the_state_machine_moving():
    state, ann = step({}, ev(6), Policy(), NOON, silenced=True)
    assert ann.silenced
    _, later = step(state, ev(6), Policy(), NOON + timedelta(minutes=1))
    assert later is None


def test_switch_trips_until_the_window_ends_and_a_released_override_wins():
    doc, changes = decide([ev(10)], [], "auto", None, NOON)
    scope = doc.scopes["team"]
    assert doc.tripped and scope.window == "daily" and scope.until == window_at("daily", UTC_ZONE, NOON).end
    assert changes[0].tripped
    released = Override("team", "released", "ops", "investigating", NOON + timedelta(hours=1))
    doc2, _ = decide([ev(10)], [released], "auto", doc, NOON + timedelta(minutes=1))
    assert not doc2.tripped
    doc3, _ = decide([ev(10)], [released], "auto", doc2, NOON + timedelta(hours=2))
    assert doc3.tripped


def test_manual_release_latches_the_switch_after_the_window_resets():
    doc, _ = decide([ev(10)], [], "manual", None, NOON)
    tomorrow = NOON + timedelta(days=1)
    doc2, _ = decide([ev(0, tomorrow)], [], "manual", doc, tomorrow)
    assert doc2.scopes["team"].tripped and doc2.scopes["team"].until is None


def test_headroom_is_what_is_left_before_the_trip_threshold():
    doc, _ = decide([ev(7.5)], [], "auto", None, NOON)
    assert doc.to_json()["scopes"]["team"]["headroom"] == "2.50"


def test_a_budget_released_by_hand_is_shown_critical_not_tripped():
    release = Override("team", "released", "alice", "fixed", NOON + timedelta(hours=12))
    shown = overridden(ev(12), release)
    assert (shown.state, shown.tripped, [w.state for w in shown.windows]) == ("critical", False, ["critical"])


def test_a_budget_tripped_by_hand_is_shown_tripped_under_its_limit():
    shown = overridden(ev(1), Override("team", "tripped", "alice", "deploy"))
    assert (shown.state, shown.tripped) == ("tripped", True)


def test_an_expired_override_changes_nothing_shown():
    expired = Override("team", "released", "alice", "fixed", NOON - timedelta(minutes=1))
    assert overridden(ev(12), expired) == ev(12)


def test_a_budget_its_switch_scope_holds_tripped_is_shown_tripped_under_its_limit():
    shown = overridden(ev(1), None, held=True)
    assert (shown.state, shown.tripped) == ("tripped", True)


def test_a_hand_release_the_switch_does_not_show_yet_leaves_the_budget_shown_tripped():
    release = Override("team", "released", "alice", "fixed")  # recorded; the scope is still tripped: not applied
    assert overridden(ev(12), release, held=True).tripped is True
    assert overridden(ev(1), release, held=True).tripped is True


def test_a_hand_release_the_switch_shows_holds_the_budget_open():
    release = Override("team", "released", "alice", "fixed")
    assert overridden(ev(12), release, held=False).tripped is False
