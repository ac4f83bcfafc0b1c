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

OPTIMIZERS = {"sgd": SGD, "momentum": MOMENTUM, "nesterov": NESTEROV, "adagrad": ADAGRAD,
              "rmsprop": RMSPROP, "adam": ADAM}

# Per-parameter memory of each optimiser, named as in torch.optim's ``state`` dicts; the
# kernels keep slot ``s`` of every parameter in row ``s`` of one (n_slots, n_params) array.
SLOTS = {"sgd": (), "momentum": ("momentum_buffer",), "nesterov": ("momentum_buffer",),
         "adagrad": ("sum",), "rmsprop": ("square_avg",), "adam": ("exp_avg", "exp_avg_sq")}

# Positions in the float64 hyper-parameter array the training kernel takes.
H_MOMENTUM = 0       # momentum, nesterov: μ
H_BETA1 = 1          # adam: β1
H_BETA2 = 2          # adam: β2
H_EPS = 3            # adagrad, rmsprop, adam: ε added to the denominator
H_RHO = 4            # rmsprop: ρ (torch's ``alpha``)
H_WEIGHT_DECAY = 5   # L2: λ/n (network2's lmbda over the number of training samples)
H_BN_MOMENTUM = 6    # batch norm: running-statistics momentum (torch's 0.1)
H_BN_EPS = 7         # batch norm: ε added to the variance (torch's 1e-5)
N_HYPER = 8
