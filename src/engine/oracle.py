"""The NumPy reference implementation: the maths of a multi-layer perceptron, plainly.

This module is the correctness oracle for every compiled backend and also the ``"numpy"``
backend itself. It favours clarity over speed: each function is one step of the textbook
algorithm (Nielsen, *Neural Networks and Deep Learning*, chapters 1-3), vectorised over a
mini-batch.

Conventions
-----------
* A batch of inputs is a matrix with one sample per **row**: ``X.shape == (m, n_in)``.
* ``weights[l]`` has shape ``(n_out, n_in)`` and ``biases[l]`` shape ``(n_out, 1)``, as in
  Nielsen's ``network.py``; so a layer computes ``Z = A_prev @ W.T + b.T``.
* ``Y`` holds the targets as rows, ``Y.shape == (m, n_out)`` (one-hot rows for class labels).
* The cost of a mini-batch is the **mean** of the per-sample costs; gradients returned by
  :func:`backprop` are **sums** over the batch, so the update is ``w -= (lr/m) * nabla_w``.
"""

import numpy as np

# ---------------------------------------------------------------------------------------
# Activations. Each works element-wise on Z, except softmax, which works on each row.
# ---------------------------------------------------------------------------------------


def sigmoid(z):
    """Logistic function 1/(1+e^-z), written so exp never overflows for large |z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softmax(z):
    """Row-wise softmax; subtracting the row maximum keeps exp from overflowing."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def activate(z, name):
    """Apply the activation called ``name`` to pre-activations ``z``."""
    if name == "sigmoid":
        return sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "identity":
        return z.copy()
    if name == "softmax":
        return softmax(z)
    raise ValueError(f"unknown activation {name!r}")


def activation_prime(a, name):
    """Derivative of an element-wise activation, expressed through its output ``a``.

    Writing σ' in terms of a = σ(z) means the forward pass need only keep activations:
    sigmoid' = a(1-a), tanh' = 1-a², relu' = [a > 0] (a > 0 exactly when z > 0).
    """
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a * a
    if name == "relu":
        return (a > 0).astype(a.dtype)
    if name == "identity":
        return np.ones_like(a)
    raise ValueError(f"{name!r} has no element-wise derivative")


def softplus(x):
    """log(1 + e^x) without overflow: max(x, 0) + log1p(e^-|x|)."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


# ---------------------------------------------------------------------------------------
# Forward pass and cost
# ---------------------------------------------------------------------------------------


def forward(weights, biases, X, hidden, output):
    """Feed a batch forward.

    Returns
    -------
    activations : list of arrays
        ``activations[0] is X``; ``activations[l]`` is layer l's output, shape ``(m, n_l)``.
    z_out : array
        The output layer's pre-activations (the cost's stable forms need them).
    """
    activations = [X]
    a = X
    depth = len(weights)
    for layer, (w, b) in enumerate(zip(weights, biases), start=1):
        z = a @ w.T + b.T
        a = activate(z, output if layer == depth else hidden)
        activations.append(a)
    return activations, z


def sample_costs(a_out, z_out, Y, cost, output):
    """Per-sample cost, shape ``(m,)``.

    * quadratic: ½‖a − y‖²
    * cross-entropy, sigmoid output: Σ_j −y ln a − (1−y) ln(1−a), computed from z as
      y·softplus(−z) + (1−y)·softplus(z) so that a saturated unit gives a finite cost.
    * cross-entropy, softmax output: −Σ_j y_j ln a_j = Σ_j y_j (logsumexp(z) − z_j).
    """
    if cost == "quadratic":
        return 0.5 * np.sum((a_out - Y) ** 2, axis=1)
    if output == "sigmoid":
        return np.sum(Y * softplus(-z_out) + (1 - Y) * softplus(z_out), axis=1)
    zmax = z_out.max(axis=1, keepdims=True)
    logsumexp = zmax + np.log(np.sum(np.exp(z_out - zmax), axis=1, keepdims=True))
    return np.sum(Y * (logsumexp - z_out), axis=1)


def mean_cost(a_out, z_out, Y, cost, output):
    """The cost of a batch: the mean of :func:`sample_costs`."""
    return float(np.mean(sample_costs(a_out, z_out, Y, cost, output)))


def output_delta(a_out, Y, cost, output):
    """δ^L = ∂C/∂z^L for each sample (rows).

    Cross-entropy paired with its canonical output (sigmoid or softmax) gives δ = a − y:
    the σ' factor cancels, which is why it learns faster from bad starts (Nielsen, ch. 3).
    (For softmax the exact form is δ = a·Σ_j y_j − y, which is a − y for targets that sum
    to one, such as one-hot labels.)
    Quadratic cost multiplies by the output's Jacobian: element-wise σ'(z), or for softmax
    J = diag(a) − a aᵀ, so δ_j = a_j (g_j − Σ_k a_k g_k) with g = a − y.
    """
    g = a_out - Y
    if cost == "cross_entropy":
        if output == "softmax":
            return a_out * Y.sum(axis=1, keepdims=True) - Y
        return g
    if output == "softmax":
        return a_out * (g - np.sum(a_out * g, axis=1, keepdims=True))
    return g * activation_prime(a_out, output)


# ---------------------------------------------------------------------------------------
# Backpropagation and the mini-batch update
# ---------------------------------------------------------------------------------------


def backprop(weights, biases, X, Y, hidden, output, cost):
    """Gradients of the **summed** cost over the batch, in the shapes of the parameters.

    Returns ``(nabla_b, nabla_w, batch_cost)`` where batch_cost is the mean cost.
    """
    activations, z_out = forward(weights, biases, X, hidden, output)
    delta = output_delta(activations[-1], Y, cost, output)
    depth = len(weights)
    nabla_b = [None] * depth
    nabla_w = [None] * depth
    for layer in range(depth - 1, -1, -1):
        nabla_b[layer] = delta.sum(axis=0)[:, None]
        nabla_w[layer] = delta.T @ activations[layer]
        if layer > 0:
            # Nielsen's line `delta = np.dot(w[-l+1].T, delta) * sp`, for row batches.
            delta = (delta @ weights[layer]) * activation_prime(activations[layer], hidden)
    return nabla_b, nabla_w, mean_cost(activations[-1], z_out, Y, cost, output)


def update_mini_batch(weights, biases, X, Y, lr, hidden, output, cost):
    """One step of gradient descent on a mini-batch, in place: w ← w − (lr/m)·Σ∇w.

    Returns the batch's mean cost, measured before the update.
    """
    m = X.shape[0]
    nabla_b, nabla_w, batch_cost = backprop(weights, biases, X, Y, hidden, output, cost)
    for w, b, nw, nb in zip(weights, biases, nabla_w, nabla_b):
        w -= (lr / m) * nw
        b -= (lr / m) * nb
    return batch_cost


def train_epoch(weights, biases, X, Y, order, batch_size, lr, hidden, output, cost):
    """One epoch: mini-batches ``order[0:m], order[m:2m], …`` (the last may be smaller).

    Returns the sum over mini-batches of (batch cost × batch size), so that dividing by
    ``len(order)`` gives the mean per-sample cost seen during the epoch.
    """
    total = 0.0
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        total += len(rows) * update_mini_batch(
            weights, biases, X[rows], Y[rows], lr, hidden, output, cost)
    return total


def feedforward(weights, biases, X, hidden, output):
    """Output activations and pre-activations for a batch of rows."""
    activations, z_out = forward(weights, biases, X, hidden, output)
    return activations[-1], z_out
