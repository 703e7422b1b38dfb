"""A budget whose ``match`` selects none of the series ever stored is said, naming the part that matched nothing:
a typo there would otherwise be a budget at $0 and OK forever (review finding F7)."""

from __future__ import annotations

import pytest

from guardd.core.budgets import Dimensions
from guardd.core.keys import KnownKey
from guardd.core.never_matched import never_matched

SEEN = [
    Dimensions("anthropic/claude-3.5-sonnet", "…abc1", "Anthropic", (("env", "prod"), ("team", "search"))),
    Dimensions("openai/gpt-4o", None, "OpenAI", (("team", "ads"),)),
]


def test_a_match_that_selects_a_series_is_fine():
    assert never_matched({"team": "search", "model": "anthropic/*"}, SEEN) is None


def test_nothing_is_said_before_any_series_exists():
    assert never_matched({"teem": "search"}, []) is None


def test_an_empty_match_takes_all_spend():
    assert never_matched({}, SEEN) is None


def test_a_label_key_never_seen_is_a_warning_naming_the_keys_seen():
    gap = never_matched({"teem": "search"}, SEEN)
    assert gap is not None and gap.level == "warning"
    assert gap.message == "label key 'teem' was never seen; seen keys: env, team"


def test_a_model_glob_matching_no_model_is_a_warning_naming_the_models_seen():
    gap = never_matched({"model": "anthropc/*"}, SEEN)
    assert gap is not None and gap.level == "warning"
    assert gap.message == "model 'anthropc/*' matched no model seen; seen: anthropic/claude-3.5-sonnet, openai/gpt-4o"


def test_a_label_value_never_seen_is_only_a_notice():
    gap = never_matched({"team": "serch"}, SEEN)
    assert gap is not None and gap.level == "notice"
    assert gap.message == "label team = 'serch' matched no value seen; seen: ads, search"


def test_entries_each_seen_but_never_together_are_a_notice():
    gap = never_matched({"team": "ads", "env": "prod"}, SEEN)
    assert gap is not None and gap.level == "notice" and gap.parts == ()
    assert gap.message == "no series ever carried all of env = 'prod', team = 'ads' together"


def test_a_provider_no_event_carried_is_a_warning():
    gap = never_matched({"provider": "Anthropic"}, [Dimensions("m")])
    assert gap is not None and gap.level == "warning"
    assert gap.message == "no event ever carried a provider (match provider = 'Anthropic')"


def test_every_part_that_matched_nothing_is_named_and_a_key_outranks_a_value():
    gap = never_matched({"teem": "search", "team": "serch"}, SEEN)
    assert gap is not None and gap.level == "warning"
    assert [(p.name, p.unseen) for p in gap.parts] == [("teem", "key"), ("team", "value")]
    assert gap.message.startswith("label key 'teem' was never seen; seen keys: env, team; label team = 'serch'")


def test_a_key_glob_is_matched_against_every_name_of_the_key_as_budgets_match_it():
    known = [KnownKey("…abc1", name="prod-api")]
    assert never_matched({"key": "prod-*"}, SEEN, known) is None
    gap = never_matched({"key": "stage-*"}, SEEN, known)
    assert gap is not None and gap.message == "key 'stage-*' matched no key seen; seen: …abc1"


def test_a_long_list_of_seen_values_is_cut_short():
    many = [Dimensions(f"m{i:02}") for i in range(15)]
    gap = never_matched({"model": "x"}, many)
    assert gap is not None and gap.message.endswith("m07, m08, m09 and 5 more")


@pytest.mark.parametrize("pattern", ["*", "sea*"])
def test_globs_that_match_a_seen_value_are_fine(pattern):
    assert never_matched({"team": pattern}, SEEN) is None


def test_a_max_budget_still_counts_openrouter_so_its_ledger_half_matching_nothing_is_a_notice():
    gap = never_matched({"teem": "search"}, SEEN, source="max")
    assert gap is not None and gap.level == "notice"


def test_an_openrouter_budget_reads_no_series_so_nothing_is_said():
    assert never_matched({"teem": "search"}, SEEN, source="openrouter") is None
