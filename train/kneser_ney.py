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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class _OrderTable:
    grams: np.ndarray  # sorted int64 keys of the n-grams of this order
    counts: np.ndarray  # raw (highest order) or continuation counts
    contexts: np.ndarray  # sorted keys of the contexts (gram // base)
    context_total: np.ndarray
    context_types: np.ndarray
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
        return _OrderTable(grams, counts.astype(np.float64), contexts, total, types, discount)

    @staticmethod
    def _lookup(sorted_keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
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
            types = self._lookup(t.contexts, t.context_types, contexts)
            seen = total > 0
            safe = np.where(seen, total, 1.0)
            mixed = (np.maximum(count - t.discount, 0.0) + t.discount * types * p) / safe
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


def baseline_report(
    train_ids, val_ids, vocab_size: int, orders=(3, 5, 7), progress: bool = False
) -> dict:
    """KN perplexity / bits per char on the validation stream, and size, for each order."""
    from tqdm import tqdm

    out = {}
    for order in tqdm(orders, desc="Kneser-Ney baselines", disable=not progress, leave=False):
        model = KneserNey(train_ids, vocab_size, order)
        out[f"kn{order}"] = {"order": order, **model.evaluate(val_ids), **model.size()}
    return out
