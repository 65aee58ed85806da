"""Cortex-M: cross-compilation with arm-none-eabi-gcc, flash/RAM sizes, emulated runs in unicorn."""
