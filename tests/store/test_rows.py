from guardd.store.api import Sum


def test_a_total_of_sums_adds_cost_events_and_unpriced_apart():
    assert Sum.total([Sum(5, 1, 0), Sum(7, 2, 1), Sum(0, 3, 3)]) == Sum(12, 6, 4)


def test_the_total_of_no_sums_is_zero():
    assert Sum.total([]) == Sum()
