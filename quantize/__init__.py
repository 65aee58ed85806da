"""Stage 2, ``elman quantize``: model.keras -> model_int8.tflite, and the IR read back from it.

Importing this package never imports TensorFlow; only the functions that build
and convert the step model do, lazily.
"""
