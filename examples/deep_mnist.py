"""A deeper network: [784, 512, 256, 10] with ReLU hidden layers and a softmax output.

    python examples/deep_mnist.py [EPOCHS]

Cross-entropy cost and He initialisation suit ReLU layers; the array API (fit / score)
reports validation accuracy each epoch. Full MNIST when it is here, else the embedded sample
(about 2 s per epoch on one core for the sample's 4,000 training images).
"""

import sys

from engine import Network, datasets

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 10

data = datasets.load_mnist_or_sample(dtype="float32")
print(f"Data: {data.name}: {data.describe()}")
# The sample has no validation part; its test images stand in for one.
held_out = data.validation if data.validation is not None else data.test

net = Network([784, 512, 256, 10], activation="relu", output="softmax",
              cost="cross_entropy", init="he_normal", dtype="float32", seed=0)
net.fit(*data.train, epochs=epochs, batch_size=10, lr=0.05, validation_data=held_out,
        verbose=1)
print(f"test accuracy: {net.score(*data.test):.4f}")
