"""Interpolated Kneser-Ney character n-gram models: the baseline an RNN must beat.

Standard interpolated Kneser-Ney (Chen & Goodman 1998, one discount per order,
``D = n1 / (n1 + 2 n2)``): the highest order uses raw counts, lower orders use
continuation counts ``N1+(. g)`` (how many distinct characters precede ``g``),
the unigram level interpolates with the uniform distribution over the
vocabulary. A context never seen backs off completely to the next lower order.
Both streams are prefixed with ``order - 1`` padding symbols, so the first
characters have a (padding) context.

All counting is vectorized over integer n-gram keys (base ``vocab + 1``).

Size: every stored n-gram (all orders) is one entry; its storage is estimated
as in an ARPA-style table: ``order`` symbol bytes (1 per symbol when the
vocabulary fits a byte, else 2) + a float32 probability + a float32 back-off
weight.

Pruning (:meth:`KneserNey.pruned`, count cut-offs as in SRILM's ``-gtNmin``):
every n-gram of order 2 and up whose (raw or continuation) count is below the
cut-off is dropped; a context keeps its full count as denominator, so the mass of
the dropped n-grams moves to the back-off weight (the model still sums to one),
and a context left with no n-gram backs off completely (it needs no entry). The
contexts of kept n-grams are kept (an ARPA table needs them for their back-off
weights). :func:`size_curve` fits orders and cut-offs and keeps the smallest model
at each perplexity: the curve the RNN's size is compared with.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class _OrderTable:
    grams: np.ndarray  # sorted int64 keys of the n-grams of this order
    counts: np.ndarray  # raw (highest order) or continuation counts
    contexts: np.ndarray  # sorted keys of the contexts (gram // base)
    context_total: np.ndarray  # full count of each context (pruned n-grams included)
    context_backoff: np.ndarray  # D x kept types + the counts of pruned n-grams
    discount: float


class KneserNey:
    """An interpolated Kneser-Ney model of one order, fitted on a stream of ids."""

    def __init__(self, train_ids: np.ndarray, vocab_size: int, order: int):
        if order < 1:
            raise ValueError("order must be >= 1")
        self.order, self.vocab_size, self.base = order, vocab_size, vocab_size + 1
        if self.base**order >= 2**62:
            raise ValueError(f"vocabulary of {vocab_size} is too large for order {order} keys")
        stream = self._padded(train_ids)
        keys = {m: self._keys(stream, m) for m in range(1, order + 1)}
        self.tables: dict[int, _OrderTable] = {}
        for m in range(1, order + 1):
            if m == order:
                grams, counts = np.unique(keys[m], return_counts=True)
            else:
                higher = np.unique(keys[m + 1])
                grams, counts = np.unique(higher % self.base**m, return_counts=True)
            self.tables[m] = self._table(grams, counts)

    def _padded(self, ids: np.ndarray) -> np.ndarray:
        pad = np.full(self.order - 1, self.vocab_size, dtype=np.int64)
        return np.concatenate([pad, np.asarray(ids, np.int64)])

    def _keys(self, stream: np.ndarray, m: int) -> np.ndarray:
        """Keys of the m-grams ending at each real (non-padding) position."""
        start = self.order - 1
        key = np.zeros(len(stream) - start, dtype=np.int64)
        for j in range(m):
            key = key * self.base + stream[start - (m - 1) + j : len(stream) - (m - 1) + j]
        return key

    def _table(self, grams: np.ndarray, counts: np.ndarray) -> _OrderTable:
        n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
        discount = n1 / (n1 + 2 * n2) if n1 + 2 * n2 > 0 else 0.5
        discount = min(max(discount, 0.05), 0.95)
        contexts, inverse = np.unique(grams // self.base, return_inverse=True)
        total = np.bincount(inverse, weights=counts).astype(np.float64)
        types = np.bincount(inverse).astype(np.float64)
        return _OrderTable(grams, counts.astype(np.float64), contexts, total, discount * types,
                           discount)

    def pruned(self, cutoff: int) -> KneserNey:
        """A copy without the n-grams (order >= 2) whose count is below ``cutoff``."""
        if cutoff <= 1:
            return self
        out = copy.copy(self)
        out.tables = {}
        needed = None  # contexts of the kept n-grams of the order above
        for m in range(self.order, 0, -1):
            t = self.tables[m]
            keep = t.counts >= cutoff if m >= 2 else np.ones(len(t.grams), bool)
            if needed is not None:
                keep |= np.isin(t.grams, needed, assume_unique=True)
            grams, counts = t.grams[keep], t.counts[keep]
            contexts, inverse = np.unique(grams // self.base, return_inverse=True)
            kept_total = np.bincount(inverse, weights=counts)
            types = np.bincount(inverse).astype(np.float64)
            total = self._lookup(t.contexts, t.context_total, contexts)
            backoff = t.discount * types + (total - kept_total)
            out.tables[m] = _OrderTable(grams, counts, contexts, total, backoff, t.discount)
            needed = contexts
        return out

    @staticmethod
    def _lookup(sorted_keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
        if len(sorted_keys) == 0:  # every n-gram of this order pruned
            return np.zeros(len(query))
        idx = np.searchsorted(sorted_keys, query)
        idx = np.minimum(idx, len(sorted_keys) - 1)
        found = sorted_keys[idx] == query
        return np.where(found, values[idx], 0.0)

    def probabilities(self, ids: np.ndarray) -> np.ndarray:
        """P(ids[i] | preceding characters) for every position of a stream."""
        stream = self._padded(ids)
        p = np.full(len(ids), 1.0 / self.vocab_size)
        for m in range(1, self.order + 1):
            t = self.tables[m]
            grams = self._keys(stream, m)
            contexts = grams // self.base
            count = self._lookup(t.grams, t.counts, grams)
            total = self._lookup(t.contexts, t.context_total, contexts)
            backoff = self._lookup(t.contexts, t.context_backoff, contexts)
            seen = total > 0
            safe = np.where(seen, total, 1.0)
            mixed = (np.maximum(count - t.discount, 0.0) + backoff * p) / safe
            p = np.where(seen, mixed, p)
        return p

    def evaluate(self, ids: np.ndarray) -> dict:
        nll = -np.log(self.probabilities(ids))
        mean = float(nll.mean())
        return {"val_perplexity": math.exp(mean), "val_bits_per_char": mean / math.log(2)}

    def size(self) -> dict:
        symbol_bytes = 1 if self.base <= 256 else 2
        per_order = {m: int(len(self.tables[m].grams)) for m in self.tables}
        return {
            "entries": int(sum(per_order.values())),
            "entries_per_order": {str(m): n for m, n in per_order.items()},
            "bytes": int(sum(n * (m * symbol_bytes + 8) for m, n in per_order.items())),
        }


CURVE_ORDERS = (3, 4, 5, 6, 7)
CURVE_CUTOFFS = (1, 2, 3, 5, 10, 20)


def size_curve(train_ids, val_ids, vocab_size: int, orders=CURVE_ORDERS,
               cutoffs=CURVE_CUTOFFS, progress: bool = False) -> dict:
    """Pruned Kneser-Ney models of several orders and cut-offs on the validation stream.

    ``points``: every (order, cut-off) with its perplexity and size; ``frontier``:
    the points no other point beats in both perplexity and bytes, smallest first.
    """
    from tqdm import tqdm

    points = []
    for order in tqdm(orders, desc="pruned Kneser-Ney", disable=not progress, leave=False):
        full = KneserNey(train_ids, vocab_size, order)
        for cutoff in cutoffs:
            model = full.pruned(cutoff)
            points.append({"order": order, "cutoff": cutoff, **model.evaluate(val_ids),
                           **model.size()})
    ranked = sorted(points, key=lambda p: (p["bytes"], p["val_perplexity"]))
    frontier, best = [], math.inf
    for p in ranked:
        if p["val_perplexity"] < best:
            frontier.append(p)
            best = p["val_perplexity"]
    return {"pruning": "count cut-off on every order >= 2 (SRILM -gtNmin style)",
            "points": points, "frontier": frontier}


def baselines(curve: dict, orders=(3, 5, 7)) -> dict:
    """The unpruned models of ``orders`` from a :func:`size_curve`: ``{"kn5": {...}, ...}``."""
    return {f"kn{p['order']}": {k: v for k, v in p.items() if k != "cutoff"}
            for p in curve["points"] if p["cutoff"] == 1 and p["order"] in orders}
