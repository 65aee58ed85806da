"""``elman search``: the most accurate Elman RNN that fits a given microcontroller.

Optuna searches units, layers, embedding, learning rate, BPTT window and the
arithmetic profile (:mod:`elman.search.space`), maximizing the int8 model's
validation metric (:mod:`elman.search.validation`) subject to flash, RAM and
latency budgets (:mod:`elman.search.budget`) that elman's own generated C,
built and emulated for the target, measures (:mod:`elman.search.footprint`).
"""
