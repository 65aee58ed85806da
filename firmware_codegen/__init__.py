"""Stage 4, `elman codegen` and `elman mcu`: the IR -> dependency-free C99, host and Cortex-M.

Works without TensorFlow.
"""
