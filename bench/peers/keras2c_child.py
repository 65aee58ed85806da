"""Runs in keras2c's own environment (keras2c 2.0, TensorFlow 2.14): C for the run's model.

Usage: python keras2c_child.py WEIGHTS.npz OUT_DIR
The float network is rebuilt in tf.keras with the run's weights twice, and each is
given to ``keras2c.k2c(model, name)`` (keras2c's command line is broken in 2.0):
- ``peer_seq``: the sequence API, input (T, D), the head on the last step;
- ``peer_step``: a stateful one-step model, input (1, 1, D), state kept by keras2c
  between calls, the head on every step.
Prints one JSON line (versions, the rebuilt models' agreement with the run's model).
"""

import json
import os
import sys

import numpy as np


def main() -> None:
    npz, out_dir = sys.argv[1:3]
    data = np.load(npz)
    import keras2c
    import tensorflow as tf
    from tensorflow import keras

    t, d = data["x_check"].shape[1:]
    units, outputs = data["wh"].shape[0], data["wy"].shape[1]

    def network(inp, stateful: bool):
        h = keras.layers.SimpleRNN(units, activation="tanh", stateful=stateful,
                                   name="simple_rnn")(inp)
        y = keras.layers.Dense(outputs, name="dense")(h)
        model = keras.Model(inp, y)
        model.get_layer("simple_rnn").set_weights([data["wx"], data["wh"], data["b"]])
        model.get_layer("dense").set_weights([data["wy"], data["by"]])
        return model

    seq = network(keras.Input(shape=(t, d), name="x"), stateful=False)
    step = network(keras.Input(batch_shape=(1, 1, d), name="x"), stateful=True)
    got = seq.predict(data["x_check"], verbose=0)
    x0 = data["x_check"][0]
    for s in range(t):
        last = step.predict(x0[None, s:s + 1], verbose=0)
    os.chdir(out_dir)  # keras2c writes NAME.c and NAME.h into the current folder
    keras2c.k2c(seq, "peer_seq", malloc=False, num_tests=0, verbose=False)
    keras2c.k2c(step, "peer_step", malloc=False, num_tests=0, verbose=False)
    print(json.dumps({
        "keras2c": getattr(keras2c, "__version__", "?"), "tensorflow": tf.__version__,
        "rebuilt_max_abs_diff": float(np.max(np.abs(got - data["y_check"]))),
        "stateful_max_abs_diff": float(np.max(np.abs(last[0] - data["y_check"][0]))),
    }))


if __name__ == "__main__":
    main()
