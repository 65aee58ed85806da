"""The Keras model elman trains and saves: [Embedding] -> SimpleRNN(tanh) -> Dense logits.

Layer names are part of the contract with ``elman quantize``: ``embedding``
(text only), ``rnn`` (``SimpleRNN``, tanh, with bias), ``head`` (``Dense``,
logits). The saved model is not stateful and accepts any batch size and any
number of steps; the training loop carries state by calling the same layers with
``initial_state``.
"""

from __future__ import annotations

RECURRENT_INITS = ("orthogonal", "identity", "glorot")


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
):
    """A fresh model. ``input_dim`` is channels (classification) or vocabulary size (text).

    ``sequence_outputs`` (default: text only) makes the head run on every step;
    classifiers are *trained* that way (the loss may use several final steps) and
    saved with :func:`last_step_classifier`.
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
    x = keras.layers.SimpleRNN(
        units,
        activation="tanh",
        use_bias=True,
        return_sequences=sequences,
        recurrent_initializer=rec,
        name="rnn",
    )(x)
    outputs = keras.layers.Dense(output_dim, name="head")(x)
    return keras.Model(inputs, outputs, name="elman")


def last_step_classifier(trained):
    """The saved form of a classifier trained with sequence outputs: the same weights,
    ``rnn`` with ``return_sequences=False`` (head on the last step only)."""
    import keras

    rnn = trained.get_layer("rnn")
    inputs = keras.Input(shape=(None, trained.input_shape[-1]), name="x")
    x = keras.layers.SimpleRNN.from_config({**rnn.get_config(), "return_sequences": False})(inputs)
    outputs = keras.layers.Dense.from_config(trained.get_layer("head").get_config())(x)
    model = keras.Model(inputs, outputs, name="elman")
    model.get_layer("rnn").set_weights(rnn.get_weights())
    model.get_layer("head").set_weights(trained.get_layer("head").get_weights())
    return model


def parameter_count(model) -> int:
    return int(sum(int(w.shape.num_elements()) for w in model.trainable_weights))
