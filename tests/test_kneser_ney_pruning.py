"""Pruned Kneser-Ney models (count cut-offs) and the size curve, on real fortunes text."""

import numpy as np
import pytest
from elman.data.datasets import load_dataset
from elman.train.kneser_ney import KneserNey, baselines, size_curve


@pytest.fixture(scope="module")
def text():
    return load_dataset("text:fortunes", max_chars=40_000)


@pytest.mark.parametrize("cutoff", [2, 3, 10])
def test_pruned_distributions_still_sum_to_one(text, cutoff):
    model = KneserNey(text.train_ids, text.vocab_size, 5).pruned(cutoff)
    prefix = text.val_ids[:30]
    for cut in (0, 2, 4, 30):
        rows = np.concatenate([np.tile(prefix[:cut], (text.vocab_size, 1)),
                               np.arange(text.vocab_size)[:, None]], axis=1)
        total = sum(model.probabilities(r.astype(np.int32))[-1] for r in rows)
        assert total == pytest.approx(1.0, abs=1e-9)


def test_cutoffs_drop_rare_ngrams_and_keep_the_contexts_of_kept_ones(text):
    full = KneserNey(text.train_ids, text.vocab_size, 4)
    assert full.pruned(1) is full
    sizes = [full.pruned(c).size() for c in (1, 2, 5)]
    assert sizes[0]["entries"] > sizes[1]["entries"] > sizes[2]["entries"]
    assert sizes[0]["bytes"] > sizes[1]["bytes"] > sizes[2]["bytes"]
    pruned = full.pruned(5)
    # the unigrams stay; every n-gram of order >= 2 kept has a count >= 5 or is the
    # context of a kept (m+1)-gram
    assert len(pruned.tables[1].grams) == len(full.tables[1].grams)
    for m in (2, 3, 4):
        t = pruned.tables[m]
        rare = t.grams[t.counts < 5]
        if m < 4:
            assert np.isin(rare, pruned.tables[m + 1].grams // full.base).all()
        else:
            assert len(rare) == 0
        contexts = np.unique(t.grams // full.base)
        assert np.isin(contexts, pruned.tables[m - 1].grams).all()
    # the full model on the data it was fitted on beats its pruned versions there
    train_ppl = [full.pruned(c).evaluate(text.train_ids[:5000])["val_perplexity"]
                 for c in (1, 2, 5)]
    assert train_ppl[0] < train_ppl[1] < train_ppl[2]


def test_size_curve_frontier_is_the_smallest_model_at_each_perplexity(text):
    curve = size_curve(text.train_ids, text.val_ids, text.vocab_size, orders=(2, 3, 4),
                       cutoffs=(1, 2, 4))
    points, frontier = curve["points"], curve["frontier"]
    assert len(points) == 9
    assert [p["bytes"] for p in frontier] == sorted(p["bytes"] for p in frontier)
    ppl = [p["val_perplexity"] for p in frontier]
    assert ppl == sorted(ppl, reverse=True) and len(set(ppl)) == len(ppl)
    for p in frontier:  # no point is at most as large and better
        assert not any(q["bytes"] <= p["bytes"] and q["val_perplexity"] < p["val_perplexity"]
                       for q in points if q is not p)
    kn = baselines(curve, orders=(2, 4))
    assert set(kn) == {"kn2", "kn4"}
    exact = KneserNey(text.train_ids, text.vocab_size, 4).evaluate(text.val_ids)
    assert kn["kn4"]["val_perplexity"] == exact["val_perplexity"]


def test_a_cutoff_above_every_count_leaves_a_lower_order_model(text):
    ids = text.train_ids[:2000]
    model = KneserNey(ids, text.vocab_size, 4).pruned(10_000)
    assert model.size()["entries_per_order"] == {"1": len(model.tables[1].grams), "2": 0,
                                                 "3": 0, "4": 0}
    # no context is left: each character has one probability wherever it occurs
    p = model.probabilities(text.val_ids)
    for token in np.unique(text.val_ids):
        assert np.ptp(p[text.val_ids == token]) < 1e-15
    assert np.isfinite(model.evaluate(text.val_ids)["val_perplexity"])
