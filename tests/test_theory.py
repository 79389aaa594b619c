"""Closed-form queueing results against the oracle table (theory-oracles.md), and the t-based CI helpers.

Every expected number below is the table's exact value (cross-checked there against an independent CTMC solve),
not an output of this code.
"""

from __future__ import annotations

import math

import pytest

from queuesim import OptionError, theory
from queuesim.analysis.stats import paired_difference, t_cdf_two_sided, t_interval, t_quantile


def close(value: float, expected: float, rel: float = 1e-9) -> bool:
    """Equal up to floating-point noise (values the table gives exactly)."""
    return math.isclose(value, expected, rel_tol=rel, abs_tol=1e-12)


def rounds_to(value: float, printed: float, places: int = 6) -> bool:
    """``value`` rounds to the table's ``printed`` number (given with ``places`` decimals)."""
    return abs(value - printed) <= 0.5 * 10**-places + 1e-12


def test_row_01_mm1_matches_the_textbook_values() -> None:
    m = theory.mm1(0.8, 1.0)
    assert close(m.rho, 0.8)
    assert close(m.mean_queue, 3.2)
    assert close(m.mean_wait, 4.0)
    assert close(m.mean_sojourn, 5.0)
    assert close(m.mean_in_system, 4.0)


def test_row_02_mm1_tails_give_the_sojourn_p95_and_the_wait_p99() -> None:
    assert rounds_to(theory.mm1_sojourn_quantile(0.8, 1.0, 0.95), 14.9787, 4)
    assert rounds_to(theory.mmc_wait_quantile(0.8, 1.0, 1, 0.99), 21.9101, 4)


@pytest.mark.parametrize(("lam", "p_wait", "lq", "wq", "w"), [
    (1.0, 0.333333, 0.333333, 0.333333, 1.333333),
    (1.6, 0.711111, 2.844444, 1.777778, 2.777778),
    (1.8, 0.852632, 7.673684, 4.263158, 5.263158),
])
def test_row_03_mm2_erlang_c(lam: float, p_wait: float, lq: float, wq: float, w: float) -> None:
    m = theory.mmc(lam, 1.0, 2)
    for got, want in ((m.p_wait, p_wait), (m.mean_queue, lq), (m.mean_wait, wq), (m.mean_sojourn, w)):
        assert rounds_to(got, want)


@pytest.mark.parametrize(("lam", "p_wait", "lq", "wq", "w"), [
    (2.0, 0.173913, 0.173913, 0.086957, 1.086957),
    (3.2, 0.596432, 2.385730, 0.745541, 1.745541),
    (3.6, 0.787753, 7.089779, 1.969383, 2.969383),
])
def test_row_04_mm4_erlang_c(lam: float, p_wait: float, lq: float, wq: float, w: float) -> None:
    m = theory.mmc(lam, 1.0, 4)
    for got, want in ((m.p_wait, p_wait), (m.mean_queue, lq), (m.mean_wait, wq), (m.mean_sojourn, w)):
        assert rounds_to(got, want)


def test_row_05_mm8_at_rho_0_9() -> None:
    m = theory.mmc(7.2, 1.0, 8)
    assert rounds_to(m.p_wait, 0.701533)
    assert rounds_to(m.mean_sojourn, 1.876916)


def test_row_06_mm4_p99_wait() -> None:
    assert rounds_to(theory.mmc_wait_quantile(3.6, 1.0, 4, 0.99), 10.9165, 4)


def test_row_07_md1_has_half_the_mm1_wait() -> None:
    m = theory.md1(0.8, 1.0)
    assert close(m.mean_wait, 2.0)
    assert close(m.mean_sojourn, 3.0)
    assert close(m.mean_queue, 1.6)


@pytest.mark.parametrize(("scv", "wq"), [(0.5, 3.0), (1 / 3, 2.666667), (4.0, 10.0), (1.0, 4.0)])
def test_row_08_pollaczek_khinchine_for_other_service_laws(scv: float, wq: float) -> None:
    assert rounds_to(theory.mg1(0.8, 1.0, scv).mean_wait, wq)


def test_row_09_cobham_nonpreemptive_priorities_and_the_conservation_law() -> None:
    high, low = theory.priority_nonpreemptive([0.3, 0.5], [1.0, 1.0])
    assert rounds_to(high, 1.142857)
    assert rounds_to(low, 5.714286)
    # the weighted mean wait equals the M/M/1 wait of the total load (work conservation)
    assert close((0.3 * high + 0.5 * low) / 0.8, theory.mm1(0.8, 1.0).mean_wait)


def test_row_10_preemptive_resume_priorities() -> None:
    high, low = theory.priority_preemptive_resume([0.3, 0.5], [1.0, 1.0])
    assert rounds_to(high, 1.428571)
    assert rounds_to(low, 7.142857)


def test_row_11_erlang_b() -> None:
    assert rounds_to(theory.erlang_b(5, 3.0), 0.110054)
    loss = theory.mmck(3.0, 1.0, 5, 5)
    assert close(loss.p_block, theory.erlang_b(5, 3.0))
    assert rounds_to(loss.throughput, 2.669837)


def test_row_12_mm1k_finite_capacity() -> None:
    m = theory.mm1k(0.8, 1.0, 5)
    assert rounds_to(m.p_block, 0.088819)
    assert rounds_to(m.mean_in_system, 1.868332)
    assert rounds_to(m.mean_sojourn, 2.563065)


def test_row_13_mm2_with_room_for_4() -> None:
    m = theory.mmck(1.6, 1.0, 2, 4)
    assert rounds_to(m.p_block, 0.143137)
    assert rounds_to(m.mean_in_system, 1.836176)
    assert rounds_to(m.mean_sojourn, 1.339315)


def test_row_14_unlimited_immediate_retries() -> None:
    r = theory.retry_unlimited(0.5, 1.0, 0.2)
    assert close(r.mean_attempts, 1.25)
    assert close(r.rho, 0.625)
    assert rounds_to(r.mean_sojourn, 3.333333)
    # the same network seen as retries through the queue with (practically) unlimited attempts
    via = theory.retry_via_queue(0.5, 1.0, 0.2, 60)
    assert close(via.mean_sojourn, r.mean_sojourn)


def test_row_15_limited_retries_on_the_same_worker() -> None:
    r = theory.retry_same_worker(0.5, 1.0, 0.2, 3)
    assert close(r.mean_attempts, 1.24)
    assert close(r.p_dead, 0.008)
    assert close(r.mean_sojourn, 3.24)
    assert close(r.mean_sojourn - r.mean_attempts / 1.0, 2.0)  # Wq = 2.0


def test_row_15_retries_to_the_tail_of_the_queue_differ_by_under_one_percent() -> None:
    same = theory.retry_same_worker(0.5, 1.0, 0.2, 3)
    tail = theory.retry_via_queue(0.5, 1.0, 0.2, 3)
    assert rounds_to(tail.mean_in_queue_node, 1.631579)
    assert 0 < (tail.mean_sojourn - same.mean_sojourn) / same.mean_sojourn < 0.01


def test_row_16_backoff_off_the_worker() -> None:
    r = theory.retry_via_queue(0.5, 1.0, 0.2, 3, backoff=(1.0, 2.0))
    assert close(r.rho, 0.62)
    assert rounds_to(r.mean_in_queue_node, 1.631579)
    assert close(r.mean_backoff, 0.28)
    assert rounds_to(r.mean_sojourn, 3.543158)
    assert close(r.goodput, 0.496)


def test_row_17_backoff_with_four_workers() -> None:
    r = theory.retry_via_queue(3.0, 1.0, 0.1, 5, backoff=(1, 2, 4, 8), servers=4)
    assert rounds_to(r.mean_attempts, 1.1111, 4)
    assert rounds_to(r.rho, 0.833325)
    assert rounds_to(r.mean_sojourn, 2.332011)
    assert close(r.p_dead, 1e-5)


def test_row_25_littles_law_numbers_for_mm4_at_rho_0_9() -> None:
    m = theory.mmc(3.6, 1.0, 4)
    assert rounds_to(m.mean_in_system, 10.689779)
    assert rounds_to(m.mean_queue, 7.089779)
    assert close(m.mean_in_system - m.mean_queue, 3.6)  # mean busy workers = λ/μ


def test_relaxation_time_gives_the_warm_up_guide_of_the_notes() -> None:
    assert round(theory.relaxation_time(0.5)) == 12
    assert round(theory.relaxation_time(0.8), -1) == 90
    assert round(theory.relaxation_time(0.9), -1) == 380


def test_an_unstable_queue_is_refused_with_the_utilisation_named() -> None:
    with pytest.raises(OptionError, match=r"arrival_rate.*rho = 1\.2"):
        theory.mm1(1.2, 1.0)
    with pytest.raises(OptionError, match="servers"):
        theory.mmc(1.0, 1.0, 0)
    with pytest.raises(OptionError, match="p_fail"):
        theory.retry_unlimited(0.5, 1.0, 1.0)
    with pytest.raises(OptionError, match="backoff"):
        theory.retry_via_queue(0.5, 1.0, 0.2, 3, backoff=(1, 2, 3))


def test_check_says_whether_the_exact_value_is_inside_the_interval() -> None:
    inside = theory.check(5.0, 5.1, 0.2)
    assert inside.ok
    assert close(inside.relative_error, 0.02)
    assert close(inside.relative_half_width, 0.04)
    outside = theory.check(5.0, 5.3, 0.2)
    assert not outside.ok
    assert "OUTSIDE" in str(outside)


@pytest.mark.parametrize(("df", "t"), [(1, 12.706205), (2, 4.302653), (5, 2.570582), (9, 2.262157),
                                        (19, 2.093024), (29, 2.045230), (120, 1.979930)])
def test_t_quantile_matches_the_published_table(df: int, t: float) -> None:
    assert rounds_to(t_quantile(0.95, df), t)


def test_t_cdf_is_symmetric_and_bounded() -> None:
    assert t_cdf_two_sided(0.0, 7) == 0.0
    assert close(t_cdf_two_sided(t_quantile(0.99, 7), 7), 0.99, 1e-9)
    assert 0.999 < t_cdf_two_sided(50.0, 3) < 1.0


def test_t_interval_of_known_values() -> None:
    est = t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert est.mean == 3.0
    assert close(est.std, math.sqrt(2.5))
    assert rounds_to(est.half_width, 2.776445 * math.sqrt(2.5) / math.sqrt(5), 5)
    assert est.contains(3.0)
    assert not est.contains(7.0)
    one = t_interval([4.0])
    assert one.n == 1
    assert math.isnan(one.half_width)


def test_paired_difference_cancels_the_common_noise() -> None:
    a = [10.0, 20.0, 30.0, 40.0]
    b = [9.0, 19.5, 29.0, 39.5]
    diff = paired_difference(a, b)
    assert close(diff.mean, 0.75)
    assert diff.half_width < t_interval(a).half_width / 10
    with pytest.raises(OptionError, match="b"):
        paired_difference(a, b[:3])
