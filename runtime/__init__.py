"""Stage 3: the integer program in numpy (the bit-exact simulator and the plain reference
program), and the real interpreters it is compared with.

Works without TensorFlow: only numpy (numba for the compiled engine) and the TFLite
interpreters. ``elman verify`` composes it with the other stages (``elman.verify``).
"""
