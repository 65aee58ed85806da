"""The training loop: truncated BPTT with carried state and global-norm clipping.

What each task does (also in the README):

- **Language model** (text): the training stream is cut into ``batch`` contiguous
  parallel streams (each epoch starts at a random offset in ``[0, bptt)``), read
  in windows of ``bptt`` steps. The hidden state at the end of one window is the
  initial state of the next (``tf.stop_gradient``: gradients stop at window
  boundaries), and is reset to zero at the start of every epoch. One update per
  window; the loss is the mean cross-entropy of every next-character prediction
  in the window.
- **Per-step classification** (streaming detection, labels ``(N, T)``): like
  text, each stream is read in windows of ``bptt`` steps with the state carried
  (no gradient) from one window to the next and reset at each stream's start;
  one update per window, the loss is the mean cross-entropy of every step.
- **Classification**: by default full BPTT over the whole sequence. The head
  runs on every step during training and the loss averages the cross-entropy of
  the last ``loss_steps`` predictions against the sequence's label (default:
  the last half of the steps; measured on BasicMotions: test accuracy 0.95-1.0
  over 5 seeds, against 0.5-0.85 with the last step only); the saved model
  answers at the last step. Sequences of unequal length are padded at the end:
  the loss weights (:func:`loss_weights`) cover only each sequence's own last
  steps, and its answer is read at its last real step (a step's output depends
  on earlier steps only, so the padding after it changes nothing before it).
  With ``bptt=k`` (equal lengths only) the sequence is run in windows of
  ``k`` steps (the first window takes the remainder, so the last one is full);
  the state is carried (no gradient) through all windows but the last, and the
  update back-propagates through the last window only (whose steps are the
  ones the loss can see).

Every update computes the global gradient norm before clipping (recorded), and
scales the gradients by ``min(1, clip / norm)`` when ``clip > 0`` (Pascanu et
al., 2013). This module imports TensorFlow at the top: import it lazily.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class Trainer:
    """Holds the model's layers and the compiled train / eval steps."""

    def __init__(
        self,
        model,
        task: str,
        *,
        lr: float,
        clip: float,
        record_norms: bool = True,
        weight_decay: float = 0.0,
        loss_steps: int | None = 1,
        per_step: bool = False,
        dropout_embedding: float = 0.0,
        dropout_head: float = 0.0,
        seed: int = 0,
        qat_weights: bool = False,
        window: int | None = None,
    ):
        import keras

        self.model = model
        self.task = task
        from elman.train.model import head_layer, recurrent_layers

        self.rnns = recurrent_layers(model)
        self.units = [rnn.units for rnn in self.rnns]
        self.embedding = model.get_layer("embedding") if task == "language_model" else None
        self.head = head_layer(model)
        if not self.rnns[-1].return_sequences:
            raise ValueError("train the sequence-output twin of a classifier (see model.py)")
        self.loss_steps = loss_steps  # None: half of each sequence (see loss_weights)
        self.per_step = bool(per_step) and task != "language_model"
        self.dropout_embedding = float(dropout_embedding)
        self.dropout_head = float(dropout_head)
        # stateless dropout masks from (seed, update): the same run draws the same masks
        self.dropout_seed = tf.Variable([int(seed), 0], dtype=tf.int64, trainable=False)
        self.clip = float(clip)
        # --qat-weights: the weights go on the int8 grid for the last updates (fit.py)
        self.qat_weights = bool(qat_weights)
        self.grid = None
        self.record_norms = record_norms or self.clip > 0
        if weight_decay > 0:
            self.optimizer = keras.optimizers.AdamW(learning_rate=lr, weight_decay=weight_decay)
        else:
            self.optimizer = keras.optimizers.Adam(learning_rate=lr)
        self.optimizer.build(model.trainable_variables)
        # one trace for every batch size and window length
        if task == "language_model":
            x_spec = tf.TensorSpec((None, None), tf.int32)
            y_spec = tf.TensorSpec((None, None), tf.int32)
        else:
            x_spec = tf.TensorSpec((None, None, model.input_shape[-1]), tf.float32)
            y_spec = tf.TensorSpec((None, None) if self.per_step else (None,), tf.int64)
        h_spec = [tf.TensorSpec((None, u), tf.float32) for u in self.units]
        # autograph=False: no tensor-dependent Python control flow here, and tracing
        # must not re-read this file's source (it may have changed since import)
        if task == "language_model" or self.per_step:  # train_step(x, y, h0)
            self.train_step = tf.function(
                lambda x, y, h0: self._train_step(x, y, h0, None),
                input_signature=[x_spec, y_spec, h_spec], autograph=False)
        else:  # train_step(x, y, h0, loss weights (B, T))
            w_spec = tf.TensorSpec((None, None), tf.float32)
            self.train_step = tf.function(
                self._train_step, input_signature=[x_spec, y_spec, h_spec, w_spec],
                autograph=False)
        self.forward = tf.function(self._forward, input_signature=[x_spec, h_spec], autograph=False)
        # text windows of exactly ``window`` steps take the unrolled path (see
        # unrolled_tanh); other lengths (an epoch's last window) the layers' own loop
        self.window = int(window) if window and task == "language_model" else None
        if self.window and not all(_plain_tanh_cell(rnn) for rnn in self.rnns):
            self.window = None
        if self.window:
            fixed = tf.TensorSpec((None, self.window), tf.int32)
            self._layer_step = self.train_step
            self._window_step = tf.function(
                lambda x, y, h0: self._train_step(x, y, h0, None, unrolled=True),
                input_signature=[fixed, fixed, h_spec], autograph=False)
            self.train_step = self._text_step

    def _text_step(self, x, y, h0):
        step = self._window_step if x.shape[1] == self.window else self._layer_step
        return step(x, y, h0)

    def zero_state(self, batch: int):
        """One zero state per recurrent layer."""
        return [tf.zeros((batch, u), tf.float32) for u in self.units]

    def start_weight_grid(self) -> None:
        """From now on the kernels are on the int8 grid (see :mod:`elman.train.weight_grid`);
        call ``self.grid.after_update()`` after every update."""
        from elman.train.weight_grid import WeightGridTraining

        self.grid = WeightGridTraining(self.model)

    def set_lr(self, lr: float) -> None:
        self.optimizer.learning_rate.assign(lr)

    def _forward(self, x, h0, training: bool = False, unrolled: bool = False):
        """(logits (B, T, outputs) of every step, each layer's last state [(B, units)]).

        ``training``: dropout on the embedded inputs and on the head's input (the last
        layer's states; the carried states themselves are never dropped).
        ``unrolled``: the same function computed by :func:`unrolled_tanh` (T static).
        """
        if unrolled:
            return self._forward_unrolled(x, h0, training)
        if self.embedding is not None:
            x = self.embedding(x)
            if training:
                x = self._dropout(x, self.dropout_embedding, 1)
        last = []
        for rnn, h in zip(self.rnns, h0, strict=True):
            x = rnn(x, initial_state=h)
            last.append(x[:, -1])
        y_in = self._dropout(x, self.dropout_head, 2) if training else x
        return self.head(y_in), last

    def _forward_unrolled(self, x, h0, training: bool):
        """:meth:`_forward` with every layer's input projection done for all steps at
        once (for text, without embedding dropout, as one lookup in the table
        ``embedding @ kernel + bias``: the same function, since nothing lies between
        the two) and the recurrence in :func:`unrolled_tanh`. 1.3-1.5x the characters
        per second of the layers' own loop at 384 units (bench/train_throughput.py)."""
        drop_embedding = training and self.dropout_embedding > 0
        seq, last = None, []
        for i, (rnn, h) in enumerate(zip(self.rnns, h0, strict=True)):
            cell = rnn.cell
            if i == 0 and not drop_embedding:
                table = tf.matmul(self.embedding.embeddings, cell.kernel) + cell.bias
                xin = tf.gather(table, x)
            else:
                inp = seq if i > 0 else self._dropout(self.embedding(x), self.dropout_embedding, 1)
                xin = tf.einsum("btc,cu->btu", inp, cell.kernel) + cell.bias
            seq = unrolled_tanh(xin, h, tf.convert_to_tensor(cell.recurrent_kernel))
            last.append(seq[:, -1])
        y_in = self._dropout(seq, self.dropout_head, 2) if training else seq
        return self.head(y_in), last

    def _dropout(self, x, rate: float, stream: int):
        if rate <= 0:
            return x
        seed = self.dropout_seed + tf.constant([0, stream], tf.int64) * (1 << 40)
        return tf.nn.experimental.stateless_dropout(x, rate, seed=seed)

    def window_loss(self, x, y, h0, w=None, unrolled: bool = False):
        """Mean cross-entropy of one window and its last hidden state (training mode).

        Text: every step against its next character ``y`` (B, T); per-step
        classification: every step against its label ``y`` (B, T); ``w`` is unused.
        Classification: every step against the label ``y`` (B,), weighted by ``w``
        (B, T), whose rows sum to 1 (:func:`loss_weights`).
        """
        logits, h_last = self._forward(x, h0, training=True, unrolled=unrolled)
        if self.task == "language_model" or self.per_step:
            nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            return tf.reduce_mean(nll), h_last
        y = tf.broadcast_to(tf.expand_dims(y, 1), tf.shape(logits)[:2])
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        return tf.reduce_sum(nll * w) / tf.cast(tf.shape(x)[0], tf.float32), h_last

    def _train_step(self, x, y, h0, w, unrolled: bool = False):
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            loss, h_last = self.window_loss(x, y, h0, w, unrolled)
        grads = tape.gradient(loss, variables)
        norm = tf.linalg.global_norm(grads) if self.record_norms else tf.constant(-1.0)
        if self.clip > 0:
            scale = tf.minimum(1.0, self.clip / tf.maximum(norm, 1e-30))
            grads = [g * scale for g in grads]
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        self.dropout_seed.assign_add(tf.constant([0, 1], tf.int64))
        return loss, norm, [tf.stop_gradient(h) for h in h_last]


def _plain_tanh_cell(rnn) -> bool:
    cell = rnn.cell
    return (getattr(cell, "use_bias", False) and cell.activation.__name__ == "tanh"
            and not cell.dropout and not cell.recurrent_dropout)


@tf.custom_gradient
def unrolled_tanh(xin, h0, recurrent):
    """States ``h_t = tanh(xin_t + h_{t-1} @ recurrent)`` (B, T, U) of a window whose T
    is static, with a hand-written backward pass.

    The forward is T small matmuls, as in any RNN. The backward carries only
    ``dh @ recurrent^T`` from step to step and computes the recurrent kernel's
    gradient as one matmul over all steps, ``H_prev^T @ dPre``, instead of T
    matmuls summed (what automatic differentiation of the loop does).
    """
    steps = xin.shape[1]
    hs, h = [], h0
    for x_t in tf.unstack(tf.transpose(xin, (1, 0, 2))):
        h = tf.tanh(x_t + tf.matmul(h, recurrent))
        hs.append(h)
    states = tf.stack(hs, axis=1)

    def grad(d_states):
        d_t = tf.unstack(tf.transpose(d_states, (1, 0, 2)))
        dh = tf.zeros_like(h0)
        d_pre = [None] * steps
        for t in reversed(range(steps)):
            d_pre[t] = (d_t[t] + dh) * (1.0 - tf.square(hs[t]))
            dh = tf.matmul(d_pre[t], recurrent, transpose_b=True)
        d_xin = tf.stack(d_pre, axis=1)
        units = tf.shape(recurrent)[0]
        h_prev = tf.concat([h0[:, None], states[:, :-1]], axis=1)
        d_recurrent = tf.matmul(tf.reshape(h_prev, (-1, units)), tf.reshape(d_xin, (-1, units)),
                                transpose_a=True)
        return d_xin, dh, d_recurrent

    return states, grad


# --- data iteration -------------------------------------------------------------------


def stream_windows(ids: np.ndarray, batch: int, bptt: int, offset: int = 0):
    """Yield (inputs, targets) windows of ``batch`` parallel streams over ``ids``."""
    ids = ids[offset:]
    length = (len(ids) - 1) // batch
    if length < 1:
        return
    streams = ids[: batch * length + 1]
    inputs = streams[:-1][: batch * length].reshape(batch, length)
    targets = streams[1:][: batch * length].reshape(batch, length)
    for start in range(0, length, bptt):
        yield inputs[:, start : start + bptt], targets[:, start : start + bptt]


def window_count(n_ids: int, batch: int, bptt: int) -> int:
    length = (n_ids - 1) // batch
    return -(-length // bptt) if length > 0 else 0


def classification_windows(x: np.ndarray, bptt: int | None) -> list[np.ndarray]:
    """Split (B, T, C) into windows along time; the first takes the remainder."""
    steps = x.shape[1]
    if not bptt or bptt >= steps:
        return [x]
    first = steps % bptt or bptt
    cuts = list(range(first, steps, bptt))
    return np.split(x, cuts, axis=1)


def loss_weights(lengths: np.ndarray, steps: int, loss_steps: int | None) -> np.ndarray:
    """(B, steps) float32: 1/k on each sequence's last k real steps, 0 elsewhere, with
    k = min(loss_steps, length), or half the length (at least 1) when ``loss_steps`` is None."""
    lengths = np.asarray(lengths, np.int64)
    k = np.maximum(1, lengths // 2) if loss_steps is None else np.minimum(loss_steps, lengths)
    t = np.arange(steps)[None, :]
    inside = (t < lengths[:, None]) & (t >= (lengths - k)[:, None])
    return (inside / k[:, None]).astype(np.float32)


def predict_classes(trainer: Trainer, x: np.ndarray, lengths: np.ndarray | None = None,
                    batch: int = 256, every_step: bool = False) -> np.ndarray:
    """Logits (N, classes) at each sequence's last real step (``lengths``; default: the
    last step), from a zero state (as the saved model on the true-length sequence);
    ``every_step``: (N, T, classes)."""
    if lengths is None:
        lengths = np.full(len(x), x.shape[1], np.int64)
    out = []
    for i in range(0, len(x), batch):
        nb = np.asarray(lengths[i : i + batch], np.int64)
        xb = x[i : i + batch, : int(nb.max())]
        logits, _ = trainer.forward(xb, trainer.zero_state(len(xb)))
        logits = logits.numpy()
        if every_step:  # back to the full length (a batch may end earlier)
            logits = np.pad(logits, ((0, 0), (0, x.shape[1] - logits.shape[1]), (0, 0)))
        out.append(logits if every_step else logits[np.arange(len(nb)), nb - 1])
    return np.concatenate(out)
