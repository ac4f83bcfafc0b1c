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
