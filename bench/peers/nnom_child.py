"""Runs in NNoM's own environment (TensorFlow 2.14): NNoM's converter on the run's model.

Usage: python nnom_child.py NNOM_DIR WEIGHTS.npz OUT_DIR
The float network is rebuilt in tf.keras with the run's weights and the layer names
NNoM's script dispatches on (it recognizes layers by substrings of their names: the
input layer's name must contain "input", the recurrent layer's "rnn", the dense
layer's "dense"), then ``generate_model`` writes ``OUT_DIR/weights.h``, calibrated on
the training split. Prints one JSON line (versions, the input and output formats).
"""

import json
import os
import sys

import numpy as np


def main() -> None:
    nnom_dir, npz, out_dir = sys.argv[1:4]
    data = np.load(npz)
    import tensorflow as tf
    from tensorflow import keras

    sys.path.insert(0, nnom_dir)
    from scripts.nnom import generate_model

    t, d = data["x_calibration"].shape[1:]
    units, outputs = data["wh"].shape[0], data["wy"].shape[1]
    inp = keras.Input(shape=(t, d), name="input")
    h = keras.layers.SimpleRNN(units, activation="tanh", name="simple_rnn")(inp)
    y = keras.layers.Dense(outputs, name="dense")(h)
    model = keras.Model(inp, y)
    model.get_layer("simple_rnn").set_weights([data["wx"], data["wh"], data["b"]])
    model.get_layer("dense").set_weights([data["wy"], data["by"]])
    got = model.predict(data["x_check"], verbose=0)
    os.chdir(out_dir)  # NNoM writes a .layer_q_list file into the current folder
    generate_model(model, data["x_calibration"], name="weights.h")
    print(json.dumps({"tensorflow": tf.__version__,
                      "rebuilt_max_abs_diff": float(np.max(np.abs(got - data["y_check"])))}))


if __name__ == "__main__":
    main()
