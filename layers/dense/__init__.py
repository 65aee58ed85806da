"""The dense head kind: ``y = FC(h'; W_y, b_y)``, at every step or the last (``elman.layers``)."""
