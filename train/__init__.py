"""Stage 1, ``elman train``: data -> model.keras (truncated BPTT, global-norm clipping)."""
