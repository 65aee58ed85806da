"""``elman verify``: every implementation of the int8 program proven against the simulator.

It sits above the stages it compares: ``inputs`` loads the run's held-out data,
``implementations`` is the registry of everything that must equal the simulator
(interpreters, the numpy engine, the generated C on this machine and on emulated
Cortex-M cores), ``report`` runs them and writes ``verify_report.json``, ``cli`` is
the command. None of the stages imports this package.
"""

from __future__ import annotations

from elman.verify.implementations import (
    IMPLEMENTATIONS,
    Implementation,
    ImplementationFactory,
    VerifyContext,
)
from elman.verify.inputs import VerifyInputs, load_verify_inputs
from elman.verify.report import format_table, mismatch_message, verify_run

__all__ = ["IMPLEMENTATIONS", "Implementation", "ImplementationFactory", "VerifyContext",
           "VerifyInputs", "format_table", "load_verify_inputs", "mismatch_message",
           "verify_run"]
