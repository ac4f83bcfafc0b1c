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

Training features (later sections): inverted dropout with masks given by the caller, batch
normalisation as ``torch.nn.BatchNorm1d`` defines it, network2's L2 weight decay, and the
update rules of ``torch.optim`` applied to the mean gradient g = Σ∇/m.
"""

from collections import namedtuple

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


def layer_activation(hidden, output, layer, depth):
    """The activation of weight layer ``layer`` (1-based) of ``depth``: ``output`` for the
    last, else ``hidden``, one name for every hidden layer or a sequence of one per hidden
    layer."""
    if layer == depth:
        return output
    return hidden if isinstance(hidden, str) else hidden[layer - 1]


def softplus(x):
    """log(1 + e^x) without overflow: max(x, 0) + log1p(e^-|x|)."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


# ---------------------------------------------------------------------------------------
# Forward pass and cost
# ---------------------------------------------------------------------------------------


def forward(weights, biases, X, hidden, output, batch_norm=None):
    """Feed a batch forward (prediction: batch-normalised layers use running statistics).

    ``hidden``: the hidden layers' activation, one name or one per hidden layer (see
    :func:`layer_activation`), as everywhere in this module.

    ``batch_norm`` is ``None`` or a list with one entry per layer, each ``None`` or a
    :class:`BatchNorm`; see :func:`forward_training` for the training-mode pass.

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
        bn = batch_norm[layer - 1] if batch_norm is not None else None
        name = layer_activation(hidden, output, layer, depth)
        if bn is None:
            z = a @ w.T + b.T
            a = activate(z, name)
        elif bn.after_activation:
            z = a @ w.T + b.T
            a = batch_norm_inference(activate(z, name), bn)
        else:
            z = batch_norm_inference(a @ w.T, bn)
            a = activate(z, name)
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
# Dropout and batch normalisation: what changes in a training-mode pass
# ---------------------------------------------------------------------------------------


def dropout_multipliers(keep, rate, dtype):
    """Inverted dropout's per-unit multipliers: 1/(1 − p) where a unit is kept, else 0.

    ``keep`` is a boolean (or 0/1) mask drawn by the caller with P(keep) = 1 − p. Scaling the
    kept units up during training keeps each unit's expected output equal to its output at
    prediction time, when nothing is dropped and nothing is scaled.
    """
    return np.asarray(keep).astype(dtype) * dtype.type(1.0 / (1.0 - rate))


class BatchNorm:
    """One layer's batch normalisation, with the definitions of ``torch.nn.BatchNorm1d``.

    ``gamma`` and ``beta`` (shape ``(n,)``) are the learnable scale and shift;
    ``running_mean`` and ``running_var`` are the averages used for prediction. All four may
    be views into a network's storage: the oracle updates them in place. A normalised layer
    has no bias of its own (β plays that role), as with ``Linear(bias=False)``.
    ``unbiased=False`` gives Keras' running variance (see :func:`update_running_statistics`);
    Keras' ``momentum`` μ is ``1 − momentum`` here. ``after_activation=True`` normalises
    the layer's activations h = σ(z + b) instead (Keras' ``Dense(n, activation=...)``
    followed by ``BatchNormalization()``): the layer then keeps its bias.

    """

    def __init__(self, gamma, beta, running_mean, running_var, eps=1e-5, momentum=0.1,
                 unbiased=True, after_activation=False):
        self.gamma, self.beta = gamma, beta
        self.running_mean, self.running_var = running_mean, running_var
        self.eps, self.momentum, self.unbiased = eps, momentum, unbiased
        self.after_activation = after_activation


def batch_norm_training(z, bn):
    """Normalise each unit over the batch: ẑ = (z − μ_B)/√(σ²_B + ε), y = γ·ẑ + β.

    σ²_B is the biased batch variance (divide by m), as torch normalises with.
    Returns ``y`` and the cache ``(ẑ, 1/√(σ²_B + ε), μ_B, σ²_B)`` the backward pass and the
    running statistics need.
    """
    mean = z.mean(axis=0)
    var = z.var(axis=0)
    inv_std = 1 / np.sqrt(var + z.dtype.type(bn.eps))
    z_hat = (z - mean) * inv_std
    return bn.gamma * z_hat + bn.beta, (z_hat, inv_std, mean, var)


def batch_norm_inference(z, bn):
    """Prediction mode: normalise with the running statistics instead of the batch's."""
    inv_std = 1 / np.sqrt(bn.running_var + z.dtype.type(bn.eps))
    return bn.gamma * ((z - bn.running_mean) * inv_std) + bn.beta


def update_running_statistics(bn, mean, var, m):
    """Running averages, torch style: r ← (1 − momentum)·r + momentum·(batch value).

    The running variance averages the *unbiased* batch variance σ²_B·m/(m − 1). A batch of
    one sample has no variance to speak of (torch refuses it); it leaves them unchanged.
    Keras' rule (``bn.unbiased`` False) averages the biased σ²_B, from any batch.
    """
    if bn.unbiased and m < 2:
        return
    mom = bn.momentum
    bn.running_mean[...] = (1 - mom) * bn.running_mean + mom * mean
    batch_var = var * m / (m - 1) if bn.unbiased else var
    bn.running_var[...] = (1 - mom) * bn.running_var + mom * batch_var


def batch_norm_backward(dy, cache, gamma):
    """Back through y = γ·ẑ + β with batch statistics, for the summed cost.

    With g_i = ∂C/∂y_i: ∂C/∂γ = Σ_i g_i ẑ_i, ∂C/∂β = Σ_i g_i, and, because μ_B and σ²_B
    depend on every sample of the batch,
    ∂C/∂z_i = (γ/(m·σ)) · (m·g_i − Σ_j g_j − ẑ_i·Σ_j g_j ẑ_j),  σ = √(σ²_B + ε).
    Returns ``(dz, dgamma, dbeta)``.
    """
    z_hat, inv_std, _, _ = cache
    m = dy.shape[0]
    dgamma = (dy * z_hat).sum(axis=0)
    dbeta = dy.sum(axis=0)
    dz = (gamma * inv_std / m) * (m * dy - dbeta - z_hat * dgamma)
    return dz, dgamma, dbeta


Trace = namedtuple("Trace", "activations hidden_outputs bn_caches z_out")
Trace.__doc__ = """What a training-mode forward pass keeps for the backward pass.

``activations[l]``: layer l's output as the next layer sees it (after dropout);
``hidden_outputs[l]``: σ of the layer before dropout (and before a batch norm that follows
the activation): what σ' is written through;
``bn_caches[l]``: :func:`batch_norm_training`'s cache or None; ``z_out``: output z."""


def forward_training(weights, biases, X, hidden, output, batch_norm=None, dropout=None):
    """A training-mode forward pass: batch statistics, then inverted dropout.

    Per layer: z = a·Wᵀ (+ bᵀ unless normalised) → batch norm → h = σ(·) → a = h ⊙ D, or
    with the batch norm after the activation: z = a·Wᵀ + bᵀ → h = σ(z) → a = BN(h) ⊙ D.
    ``batch_norm`` and ``dropout`` have one entry per weight layer (``[0]`` is the first
    hidden layer's), or are None: a :class:`BatchNorm` or None, and the multipliers D
    (shape ``(m, n)``, see :func:`dropout_multipliers`) or None; the output layer takes
    neither.
    """
    depth = len(weights)
    activations, hidden_outputs, caches = [X], [X], [None]
    a = X
    for layer, (w, b) in enumerate(zip(weights, biases), start=1):
        bn = batch_norm[layer - 1] if batch_norm is not None else None
        name = layer_activation(hidden, output, layer, depth)
        cache = None
        if bn is None:
            z = a @ w.T + b.T
            h = y = activate(z, name)
        elif bn.after_activation:  # σ, then batch norm; h = σ(z) is what σ' needs
            z = a @ w.T + b.T
            h = activate(z, name)
            y, cache = batch_norm_training(h, bn)
        else:
            z, cache = batch_norm_training(a @ w.T, bn)
            h = y = activate(z, name)
        D = dropout[layer - 1] if dropout is not None and layer < depth else None
        a = y if D is None else y * D
        activations.append(a)
        hidden_outputs.append(h)
        caches.append(cache)
    return Trace(activations, hidden_outputs, caches, z)


Gradients = namedtuple("Gradients", "b w gamma beta cost trace")
Gradients.__doc__ = """Summed-cost gradients by layer (``gamma``/``beta``: None for layers
without batch norm; ``b`` is zero for them), the batch's mean cost, and the forward trace."""


def gradients(weights, biases, X, Y, hidden, output, cost, batch_norm=None, dropout=None,
              sample_weight=None, denominator=None):
    """Backpropagation through every feature: dropout, batch norm, activations.

    Going down from layer l to l − 1 (rows are samples):
    δa = δ^l·W^l (Nielsen's Wᵀδ), δh = δa ⊙ D (dropout), δy = δh ⊙ σ'(h), and
    δz = :func:`batch_norm_backward` (δy) for a normalised layer, else δz = δy.

    ``sample_weight`` (shape ``(m,)``) weights each sample's cost: its output error δ^L is
    multiplied by its weight, so the gradients are of Σ sᵢ·Cᵢ, and the returned cost is
    Σ sᵢ·Cᵢ / ``denominator`` (default m) instead of the mean.
    """
    trace = forward_training(weights, biases, X, hidden, output, batch_norm, dropout)
    acts, outs = trace.activations, trace.hidden_outputs
    delta = output_delta(acts[-1], Y, cost, output)
    if sample_weight is None:
        batch_cost = mean_cost(acts[-1], trace.z_out, Y, cost, output)
    else:
        delta = delta * sample_weight[:, None]
        costs = sample_costs(acts[-1], trace.z_out, Y, cost, output)
        batch_cost = float(np.sum(costs * sample_weight)) / (
            X.shape[0] if denominator is None else denominator)
    depth = len(weights)
    nabla_b, nabla_w = [None] * depth, [None] * depth
    nabla_gamma, nabla_beta = [None] * depth, [None] * depth
    def after(layer):  # batch norm after the activation of weight layer ``layer + 1``
        return (batch_norm is not None and batch_norm[layer] is not None
                and batch_norm[layer].after_activation)

    for layer in range(depth - 1, -1, -1):
        if batch_norm is not None and batch_norm[layer] is not None:
            delta, nabla_gamma[layer], nabla_beta[layer] = batch_norm_backward(
                delta, trace.bn_caches[layer + 1], batch_norm[layer].gamma)
            if after(layer):  # δ was ∂C/∂y; now ∂C/∂h, then through σ'(h) to ∂C/∂z
                delta = delta * activation_prime(
                    outs[layer + 1], layer_activation(hidden, output, layer + 1, depth))
                nabla_b[layer] = delta.sum(axis=0)[:, None]
            else:
                nabla_b[layer] = np.zeros_like(biases[layer])  # the layer adds no bias
        else:
            nabla_b[layer] = delta.sum(axis=0)[:, None]
        nabla_w[layer] = delta.T @ acts[layer]
        if layer > 0:
            # Nielsen's line `delta = np.dot(w[-l+1].T, delta) * sp`, for row batches.
            delta = delta @ weights[layer]
            if dropout is not None and dropout[layer - 1] is not None:
                delta = delta * dropout[layer - 1]
            if not after(layer - 1):  # else σ' follows the batch norm's backward pass
                delta = delta * activation_prime(outs[layer],
                                                 layer_activation(hidden, output, layer, depth))
    return Gradients(nabla_b, nabla_w, nabla_gamma, nabla_beta, batch_cost, trace)


def backprop(weights, biases, X, Y, hidden, output, cost, batch_norm=None, dropout=None):
    """Gradients of the **summed** cost over the batch, in the shapes of the parameters.

    Returns ``(nabla_b, nabla_w, batch_cost)`` where batch_cost is the mean cost. With batch
    normalisation or dropout (see :func:`gradients`) this is the training-mode gradient.
    """
    grads = gradients(weights, biases, X, Y, hidden, output, cost, batch_norm, dropout)
    return grads.b, grads.w, grads.cost


# ---------------------------------------------------------------------------------------
# Optimisers: torch.optim's update rules, on the mean gradient g = Σ∇/m
# ---------------------------------------------------------------------------------------


def sgd_update(p, nabla, m, lr, weight_decay=0.0):
    """Nielsen's rule with network2's L2 decay: p ← (1 − lr·λ/n)·p − (lr/m)·Σ∇.

    ``weight_decay`` is λ/n. (torch.optim.SGD with weight_decay = λ/n is the same update.)
    """
    if weight_decay:
        p[...] = (1 - lr * weight_decay) * p - (lr / m) * nabla
    else:
        p -= (lr / m) * nabla


def momentum_update(p, g, buf, lr, momentum, nesterov):
    """torch.optim.SGD(momentum=μ, nesterov=…): b ← μ·b + g; step along b, or along
    g + μ·b for Nesterov's look-ahead form. (b starts at zero, so the first b is g.)"""
    buf[...] = momentum * buf + g
    p -= lr * (g + momentum * buf if nesterov else buf)


def adagrad_update(p, g, total, lr, eps, eps_inside=False):
    """torch.optim.Adagrad: s ← s + g²; p ← p − lr·g/(√s + ε). ``eps_inside``: Keras'
    Adagrad, p ← p − lr·g/√(s + ε) (Keras starts s at its ``initial_accumulator_value``)."""
    total += g * g
    if eps_inside:
        p -= (lr * g) / np.sqrt(total + eps)
    else:
        p -= lr * (g / (np.sqrt(total) + eps))


def rmsprop_update(p, g, square_avg, lr, rho, eps, eps_inside=False):
    """torch.optim.RMSprop (its ``alpha`` is our ρ): v ← ρ·v + (1 − ρ)·g²;
    p ← p − lr·g/(√v + ε). ``eps_inside``: Keras' RMSprop, p ← p − lr·g/√(v + ε)."""
    square_avg[...] = rho * square_avg + (1 - rho) * (g * g)
    if eps_inside:
        p -= (lr * g) / np.sqrt(square_avg + eps)
    else:
        p -= lr * (g / (np.sqrt(square_avg) + eps))


def adam_update(p, g, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, t):
    """torch.optim.Adam at step t (1, 2, …): m ← β1·m + (1 − β1)·g,
    v ← β2·v + (1 − β2)·g², p ← p − lr·m̂/(√v̂ + ε) with m̂ = m/(1 − β1ᵗ), v̂ = v/(1 − β2ᵗ)
    (arranged as torch computes it: step lr/(1 − β1ᵗ), denominator √v/√(1 − β2ᵗ) + ε)."""
    exp_avg[...] = beta1 * exp_avg + (1 - beta1) * g
    exp_avg_sq[...] = beta2 * exp_avg_sq + (1 - beta2) * (g * g)
    step_size = lr / (1 - beta1 ** t)
    denom = np.sqrt(exp_avg_sq) / (1 - beta2 ** t) ** 0.5 + eps  # a Python float: keeps dtype
    p -= step_size * (exp_avg / denom)


def velocity_update(p, g, velocity, lr, momentum, nesterov):
    """scikit-learn's and Keras' SGD with momentum μ: v ← μ·v − lr·g; p ← p + v, or
    p ← p + μ·v − lr·g (the new v) for Nesterov's form. μ = 0 is plain SGD."""
    velocity[...] = momentum * velocity - lr * g
    if nesterov:
        p += momentum * velocity - lr * g
    else:
        p += velocity


def adam_folded_update(p, g, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, t):
    """Adam as scikit-learn's MLP and Keras write it, at step t (1, 2, …): the moments as in
    :func:`adam_update`, then p ← p − lr_t·m/(√v + ε) with the bias correction folded into
    the step size, lr_t = lr·√(1 − β2ᵗ)/(1 − β1ᵗ) (ε is not divided by √(1 − β2ᵗ))."""
    exp_avg[...] = beta1 * exp_avg + (1 - beta1) * g
    exp_avg_sq[...] = beta2 * exp_avg_sq + (1 - beta2) * (g * g)
    step_size = lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    p -= step_size * exp_avg / (np.sqrt(exp_avg_sq) + eps)


class Optimizer:
    """An update rule, its hyper-parameters and its memory, for a list of parameters.

    ``hyper``: dict with the keys the rule needs (``momentum``, ``beta1``, ``beta2``, ``eps``,
    ``rho``) and ``weight_decay`` (λ/n, applied to weight matrices only). ``slots``: one list
    per parameter of arrays shaped like it (torch's per-parameter ``state``), updated in
    place. ``step``: a one-element integer array counting updates (Adam's t).
    """

    def __init__(self, name, hyper, slots, step):
        self.name, self.hyper, self.slots, self.step = name, hyper, slots, step

    def update(self, params, nablas, decays, m, lr):
        """One step for every parameter; ``nablas`` are summed gradients of m samples and
        ``decays[i]`` says whether parameter i takes weight decay."""
        self.step[0] += 1
        h = self.hyper
        for p, nabla, slots, decay in zip(params, nablas, self.slots, decays):
            wd = h["weight_decay"] if decay else 0.0
            if self.name == "sgd":
                sgd_update(p, nabla, m, lr, wd)
                continue
            g = nabla / m
            if wd:
                g = g + wd * p  # torch's (coupled) weight_decay: the L2 term's gradient
            if self.name in ("momentum", "nesterov"):
                momentum_update(p, g, slots[0], lr, h["momentum"], self.name == "nesterov")
            elif self.name in ("adagrad", "adagrad_eps_inside"):
                adagrad_update(p, g, slots[0], lr, h["eps"], self.name == "adagrad_eps_inside")
            elif self.name in ("rmsprop", "rmsprop_eps_inside"):
                rmsprop_update(p, g, slots[0], lr, h["rho"], h["eps"],
                               self.name == "rmsprop_eps_inside")
            elif self.name == "adam":
                adam_update(p, g, slots[0], slots[1], lr, h["beta1"], h["beta2"], h["eps"],
                            int(self.step[0]))
            elif self.name in ("velocity", "velocity_nesterov"):
                velocity_update(p, g, slots[0], lr, h["momentum"],
                                self.name == "velocity_nesterov")
            elif self.name == "adam_folded":
                adam_folded_update(p, g, slots[0], slots[1], lr, h["beta1"], h["beta2"],
                                   h["eps"], int(self.step[0]))
            else:
                raise ValueError(f"unknown optimizer {self.name!r}")


# ---------------------------------------------------------------------------------------
# The mini-batch update and the epoch
# ---------------------------------------------------------------------------------------


def update_mini_batch(weights, biases, X, Y, lr, hidden, output, cost, optimizer=None,
                      batch_norm=None, dropout=None, sample_weight=None, weight_total=False,
                      l2_batch=0.0, cost_scale=1.0):
    """One step of gradient descent on a mini-batch, in place: w ← w − (lr/m)·Σ∇w, or the
    ``optimizer``'s rule. Batch-norm layers also update their running statistics.

    Parameters are taken in the order weights, biases, then γ and β of each normalised
    layer (the order of an :class:`Optimizer`'s ``slots``). Returns the batch's cost,
    measured before the update: the mean of the samples' costs (times ``cost_scale``).

    scikit-learn's rules (see ``kernels/codes.py``): ``sample_weight`` (shape ``(m,)``)
    weights each sample's cost and gradient; the weighted sums are divided by M, the
    batch's total weight Σsᵢ with ``weight_total``, else its size m. ``l2_batch`` (α) adds
    ½·α·Σ‖W‖²/M to the batch's cost and α·W/M to each weight matrix's gradient, so the
    gradient step follows (Σ∇ + α·W)/M as ``MLPClassifier._backprop`` writes it.
    """
    m = X.shape[0]
    M = m
    if sample_weight is not None and weight_total:
        M = float(np.sum(sample_weight))
    grads = gradients(weights, biases, X, Y, hidden, output, cost, batch_norm, dropout,
                      sample_weight, M)
    batch_cost = grads.cost * cost_scale
    nabla_w = list(grads.w)
    if l2_batch:
        batch_cost += 0.5 * l2_batch * sum(float(np.sum(w.astype(np.float64) ** 2))
                                           for w in weights) / M
        nabla_w = [nabla + l2_batch * w for nabla, w in zip(nabla_w, weights)]
    params, nablas = list(weights) + list(biases), nabla_w + grads.b
    decays = [True] * len(weights) + [False] * len(biases)
    for layer, bn in enumerate(batch_norm or []):
        if bn is not None:
            _, _, mean, var = grads.trace.bn_caches[layer + 1]
            update_running_statistics(bn, mean, var, m)
            params += [bn.gamma, bn.beta]
            nablas += [grads.gamma[layer], grads.beta[layer]]
            decays += [False, False]
    if optimizer is None:
        for p, nabla in zip(params, nablas):
            p -= (lr / M) * nabla
    else:
        optimizer.update(params, nablas, decays, M, lr)
    return batch_cost


def train_epoch(weights, biases, X, Y, order, batch_size, lr, hidden, output, cost,
                optimizer=None, batch_norm=None, dropout=None, sample_weight=None,
                **rules):
    """One epoch: mini-batches ``order[0:m], order[m:2m], …`` (the last may be smaller).

    ``dropout``: None, or per weight layer None or multipliers with one row per entry of
    ``order`` (see :func:`forward_training`). ``sample_weight``: None or one weight per row
    of ``X``; ``rules``: :func:`update_mini_batch`'s ``weight_total``, ``l2_batch`` and
    ``cost_scale``. Returns the sum over mini-batches of (batch cost × batch size), so that
    dividing by ``len(order)`` gives the mean per-sample cost seen during the epoch.
    """
    total = 0.0
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        D = None
        if dropout is not None:
            D = [None if d is None else d[start:start + batch_size] for d in dropout]
        weights_of_rows = None if sample_weight is None else sample_weight[rows]
        total += len(rows) * update_mini_batch(
            weights, biases, X[rows], Y[rows], lr, hidden, output, cost, optimizer,
            batch_norm, D, weights_of_rows, **rules)
    return total


def feedforward(weights, biases, X, hidden, output, batch_norm=None):
    """Output activations and pre-activations for a batch of rows (prediction mode)."""
    activations, z_out = forward(weights, biases, X, hidden, output, batch_norm)
    return activations[-1], z_out
