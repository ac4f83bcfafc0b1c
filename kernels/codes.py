"""Integer codes that select an activation or a cost inside one compiled kernel.

Passing a small integer instead of a function keeps the number of compiled
specialisations at one per dtype, whatever the combination of activations and costs.
"""

SIGMOID = 0
TANH = 1
RELU = 2
IDENTITY = 3
SOFTMAX = 4  # output layer only

QUADRATIC = 0
CROSS_ENTROPY = 1

ACTIVATIONS = {"sigmoid": SIGMOID, "tanh": TANH, "relu": RELU, "identity": IDENTITY}
OUTPUTS = dict(ACTIVATIONS, softmax=SOFTMAX)
COSTS = {"quadratic": QUADRATIC, "cross_entropy": CROSS_ENTROPY}

# Optimisers (see engine.training for the update rules and their torch.optim names).
SGD = 0
MOMENTUM = 1
NESTEROV = 2
ADAGRAD = 3
RMSPROP = 4
ADAM = 5
# The same ideas in the form scikit-learn's MLP (``_stochastic_optimizers.py``) and Keras
# (``keras.optimizers.SGD`` and ``Adam``) write them, g the mean gradient of the mini-batch:
# VELOCITY            v ← μ·v − lr·g; p ← p + v           (momentum μ, which may be 0)
# VELOCITY_NESTEROV   v ← μ·v − lr·g; p ← p + μ·v − lr·g  (the new v)
# ADAM_FOLDED         m ← β1·m + (1 − β1)·g, s ← β2·s + (1 − β2)·g²,
#                     p ← p − lr_t·m/(√s + ε), lr_t = lr·√(1 − β2ᵗ)/(1 − β1ᵗ)
# VELOCITY takes the same steps as MOMENTUM with v = −lr·b only while lr is constant; ADAM_FOLDED
# differs from ADAM in where ε sits (outside the bias correction of s).
VELOCITY = 6
VELOCITY_NESTEROV = 7
ADAM_FOLDED = 8
# Keras' RMSprop and Adagrad put ε under the square root (torch's add it to the root):
# RMSPROP_EPS_INSIDE  v ← ρ·v + (1 − ρ)·g²; p ← p − lr·g/√(v + ε)
# ADAGRAD_EPS_INSIDE  s ← s + g²; p ← p − lr·g/√(s + ε)  (Keras starts s at 0.1)
RMSPROP_EPS_INSIDE = 9
ADAGRAD_EPS_INSIDE = 10

OPTIMIZERS = {"sgd": SGD, "momentum": MOMENTUM, "nesterov": NESTEROV, "adagrad": ADAGRAD,
              "rmsprop": RMSPROP, "adam": ADAM, "velocity": VELOCITY,
              "velocity_nesterov": VELOCITY_NESTEROV, "adam_folded": ADAM_FOLDED,
              "rmsprop_eps_inside": RMSPROP_EPS_INSIDE, "adagrad_eps_inside": ADAGRAD_EPS_INSIDE}

# Per-parameter memory of each optimiser, named as in torch.optim's ``state`` dicts (the
# velocity rules: scikit-learn's and Keras' ``velocities``); the kernels keep slot ``s`` of
# every parameter in row ``s`` of one (n_slots, n_params) array.
SLOTS = {"sgd": (), "momentum": ("momentum_buffer",), "nesterov": ("momentum_buffer",),
         "adagrad": ("sum",), "rmsprop": ("square_avg",), "adam": ("exp_avg", "exp_avg_sq"),
         "velocity": ("velocity",), "velocity_nesterov": ("velocity",),
         "adam_folded": ("exp_avg", "exp_avg_sq"), "rmsprop_eps_inside": ("velocity",),
         "adagrad_eps_inside": ("accumulator",)}

# Positions in the float64 hyper-parameter array the training kernel takes.
H_MOMENTUM = 0       # momentum, nesterov: μ
H_BETA1 = 1          # adam: β1
H_BETA2 = 2          # adam: β2
H_EPS = 3            # adagrad, rmsprop, adam: ε added to the denominator
H_RHO = 4            # rmsprop: ρ (torch's ``alpha``)
H_WEIGHT_DECAY = 5   # L2: λ/n (network2's lmbda over the number of training samples)
H_BN_MOMENTUM = 6    # batch norm: running-statistics momentum (torch's 0.1)
H_BN_EPS = 7         # batch norm: ε added to the variance (torch's 1e-5)
H_L2_BATCH = 8       # scikit-learn's L2 ``alpha``: the cost of each mini-batch gains
#                      ½·α·Σw²/M and its gradient α·w/M (weights only), M the batch's size,
#                      or its total sample weight under H_WEIGHT_TOTAL
H_WEIGHT_TOTAL = 9   # with sample weights: 1 divides a mini-batch's weighted sums by the total
#                      weight Σsᵢ (scikit-learn's np.average), 0 by its size m (Keras, torch)
H_COST_SCALE = 10    # factor on the reported data cost (scikit-learn's squared error is
#                      averaged over the outputs as well: 1/n_out); gradients are unchanged
H_BN_UNBIASED = 11   # batch norm: 1 averages the unbiased batch variance σ²_B·m/(m − 1) into
#                      the running variance (torch), 0 the biased σ²_B (Keras)
N_HYPER = 12
