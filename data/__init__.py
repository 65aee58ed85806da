"""Data, ``elman.data``: every loader, ``data_spec.json``, and a run's held-out data.

- :mod:`elman.data.datasets`: ``load_dataset("sensor:...|npz:...|text:...")`` for training;
- :mod:`elman.data.ts_format`: the UEA/UCR ``.ts`` reader; :mod:`elman.data.text_corpus`:
  fortunes and user text files;
- :mod:`elman.data.spec`: ``data_spec.json`` of a run directory, re-loaded with
  :func:`~elman.data.spec.load_run_data`;
- :mod:`elman.data.held_out`: :func:`~elman.data.held_out.load_held_out`, the one loader
  of held-out data every stage after training uses.

Importing this package imports neither TensorFlow nor ``elman.train``.
"""
