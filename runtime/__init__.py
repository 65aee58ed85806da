"""Stage 3: the integer program in numpy (the bit-exact simulator) and ``elman verify``.

Works without TensorFlow: only numpy and the TFLite interpreters.
"""
