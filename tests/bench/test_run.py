"""The pure parts of bench.run: the memory trend (least-squares slope, flat or not), the ratios
and the verdicts against issue #21's targets."""

from __future__ import annotations

from typing import Any

import pytest

from bench.run import MEMORY_FLAT_MIB_PER_10MIN, TARGETS, memory_trend, ratio, slope, verdicts


def test_slope_of_a_line_and_of_too_little() -> None:
    assert slope([(0, 1.0), (1, 3.0), (2, 5.0)]) == pytest.approx(2.0)
    assert slope([(0, 7.0), (10, 7.0), (20, 7.0)]) == pytest.approx(0.0)
    assert slope([(5, 1.0)]) is None
    assert slope([(5, 1.0), (5, 2.0)]) is None  # no spread in x


def test_a_leak_is_not_flat_and_noise_around_a_level_is() -> None:
    # 4 KiB a second for 9 minutes (2.3 MiB per 10 minutes): above the bound of 1 MiB
    leak = [(float(t), 100 + 4 * t / 1024) for t in range(60, 600)]
    trend = memory_trend(leak, 60, 600)
    assert trend["samples"] == 540
    assert trend["slope_mib_per_min"] == pytest.approx(240 / 1024, rel=1e-3)
    assert trend["growth_mib_per_10min"] > MEMORY_FLAT_MIB_PER_10MIN
    assert trend["flat"] is False
    assert trend["start"] == pytest.approx(100 + 240 / 1024, abs=0.05)
    assert trend["max"] == trend["end"]

    # an allocator's up and down of 0.5 MiB, no trend
    noise = [(float(t), 100 + (0.5 if t % 7 == 0 else 0.0)) for t in range(60, 600)]
    assert memory_trend(noise, 60, 600)["flat"] is True


def test_the_trend_reads_only_its_window() -> None:
    # growth in the first minute (caches filling), level after: flat from the first minute on
    samples = [(float(t), 50.0 + min(t, 60)) for t in range(0, 600)]
    assert memory_trend(samples, 0, 600)["flat"] is False
    after = memory_trend(samples, 60, 600)
    assert after["flat"] is True
    assert after["start"] == after["end"] == 110.0


def test_too_few_samples_say_nothing() -> None:
    trend = memory_trend([(float(t), 10.0) for t in range(5)], 0, 10)
    assert trend["flat"] is None
    assert trend["slope_mib_per_min"] is None
    assert memory_trend([], 0, 10)["start"] is None


def test_ratio() -> None:
    assert ratio(3000, 7500) == 0.4
    assert ratio(3000, None) is None
    assert ratio(3000, 0) is None


def _met(**over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "options": {"sweep_cases": 1_000_000},
        "pipeline_reports_per_s": 6100.0,
        "ratio_to_chain_limit": 0.41,
        "latency_ms": {"200": {"p99": 49.0}},
        "memory": {"duration_s": 600, "flat": True},
        "sweep_ms_1m_open": 19.0,
        "loop_closed_per_s": 2100.0,
    }
    r.update(over)
    return r


def test_verdicts_on_the_issues_targets() -> None:
    assert all(verdicts(_met()).values())
    assert TARGETS["pipeline_reports_per_s"] == 6000
    assert TARGETS["ratio_to_chain_limit"] == 0.40
    missed = verdicts(
        _met(
            pipeline_reports_per_s=5999.0,
            ratio_to_chain_limit=0.39,
            latency_ms={"200": {"p99": 51.0}},
            memory={"duration_s": 600, "flat": False},
            sweep_ms_1m_open=20.0,
            loop_closed_per_s=1999.0,
        )
    )
    assert not any(missed.values())
    assert all(v is False for v in missed.values())


def test_what_a_run_did_not_measure_is_none() -> None:
    v = verdicts(
        _met(
            options={"sweep_cases": 100_000},  # a smaller sweep is not the target's
            memory={"duration_s": 60, "flat": True},  # not 10 minutes
            loop_closed_per_s=None,
            latency_ms={},
        )
    )
    assert v["sweep over 1,000,000 open cases < 20 ms"] is None
    assert v["memory flat over 10 minutes at 500/s"] is None
    assert v["loop >= 2000 closed/s"] is None
    assert v["p99 <= 50 ms at 200/s after the warm-up"] is None
    assert v["pipeline >= 6000/s"] is True
