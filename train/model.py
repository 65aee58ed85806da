"""The Keras model elman trains and saves: [Embedding] -> SimpleRNN(tanh) x 1-3 -> Dense logits.

Layers are named ``embedding`` (text only), ``rnn`` (one layer) or ``rnn_1`` ..
``rnn_L``, and ``head`` (``Dense``, logits) for people reading the file;
``elman quantize`` and the training loop find them by structure. The saved
model is not stateful and accepts any batch size and any number of steps; the
training loop carries state by calling the same layers with ``initial_state``.
"""

from __future__ import annotations

RECURRENT_INITS = ("orthogonal", "identity", "glorot")
MAX_LAYERS = 3


def rnn_names(layers: int) -> list[str]:
    return ["rnn"] if layers == 1 else [f"rnn_{i}" for i in range(1, layers + 1)]


def recurrent_layers(model) -> list:
    """The model's SimpleRNN layers, input side first."""
    return [la for la in model.layers if type(la).__name__ == "SimpleRNN"]


def head_layer(model):
    """The model's Dense head (the last Dense layer)."""
    return [la for la in model.layers if type(la).__name__ == "Dense"][-1]


def build_model(
    task: str,
    *,
    units: int,
    input_dim: int,
    output_dim: int,
    embedding: int = 0,
    recurrent_init: str = "orthogonal",
    recurrent_scale: float = 1.0,
    sequence_outputs: bool | None = None,
    layers: int = 1,
):
    """A fresh model. ``input_dim`` is channels (classification) or vocabulary size (text).

    ``layers`` stacked SimpleRNNs of ``units`` each. ``sequence_outputs``
    (default: text only) makes the head run on every step; classifiers are
    *trained* that way (the loss may use several final steps) and saved with
    :func:`last_step_classifier` (per-step classifiers are saved as trained).
    """
    import keras

    rec = {
        "orthogonal": keras.initializers.Orthogonal(gain=recurrent_scale),
        "identity": keras.initializers.Identity(gain=recurrent_scale),
        "glorot": keras.initializers.GlorotUniform(),
    }[recurrent_init]
    if task == "language_model":
        inputs = keras.Input(shape=(None,), dtype="int32", name="tokens")
        x = keras.layers.Embedding(input_dim, embedding, name="embedding")(inputs)
        sequences = True
    else:
        inputs = keras.Input(shape=(None, input_dim), name="x")
        x = inputs
        sequences = bool(sequence_outputs)
    names = rnn_names(layers)
    for i, name in enumerate(names):
        x = keras.layers.SimpleRNN(
            units,
            activation="tanh",
            use_bias=True,
            return_sequences=sequences or i < len(names) - 1,
            recurrent_initializer=rec,
            name=name,
        )(x)
    outputs = keras.layers.Dense(output_dim, name="head")(x)
    return keras.Model(inputs, outputs, name="elman")


def last_step_classifier(trained):
    """The saved form of a classifier trained with sequence outputs: the same weights,
    the last recurrent layer with ``return_sequences=False`` (head on the last step only)."""
    import keras

    rnns = recurrent_layers(trained)
    head = head_layer(trained)
    inputs = keras.Input(shape=(None, trained.input_shape[-1]), name="x")
    x, copies = inputs, []
    for i, rnn in enumerate(rnns):
        last = i == len(rnns) - 1
        copy = keras.layers.SimpleRNN.from_config({**rnn.get_config(),
                                                   "return_sequences": not last})
        x = copy(x)
        copies.append(copy)
    dense = keras.layers.Dense.from_config(head.get_config())
    model = keras.Model(inputs, dense(x), name="elman")
    for copy, rnn in zip(copies, rnns, strict=True):
        copy.set_weights(rnn.get_weights())
    dense.set_weights(head.get_weights())
    return model


def parameter_count(model) -> int:
    return int(sum(int(w.shape.num_elements()) for w in model.trainable_weights))
