"""``elman search``: the most accurate Elman RNN that fits a given microcontroller.

Optuna searches units, layers, embedding, learning rate, BPTT window, the
arithmetic profile and the state width (:mod:`elman.search.space`), maximizing
the quantized model's validation metric (:mod:`elman.search.validation`) subject to flash, RAM and
latency budgets (:mod:`elman.search.budget`) that elman's own generated C,
built and emulated for any core of the target registry (:mod:`elman.targets`),
measures (:mod:`elman.search.footprint`).
"""
