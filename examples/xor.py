"""XOR: the smallest problem a network needs a hidden layer for.

    python examples/xor.py

A [2, 3, 1] sigmoid network learns exclusive-or from its four cases with the array API.
"""

import numpy as np

from engine import Network

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
y = np.array([0, 1, 1, 0], dtype=float)  # float targets: regression onto one output unit

net = Network([2, 3, 1], activation="sigmoid", cost="quadratic", seed=0)
history = net.fit(X, y, epochs=2000, batch_size=4, lr=2.0)

print(f"loss: {history['loss'][0]:.4f} at the start, {history['loss'][-1]:.6f} at the end")
for inputs, output in zip(X.astype(int), net.predict(X)):
    print(f"{inputs[0]} xor {inputs[1]} = {output:.3f} -> {int(output > 0.5)}")
