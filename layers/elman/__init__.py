"""The Elman layer kind: ``h' = TANH(ADD(FC(in; W_x, b), FC(h; W_h)))`` (see ``elman.layers``)."""
