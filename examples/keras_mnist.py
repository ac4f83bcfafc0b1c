"""Keras' deep MNIST model, layer by layer, on the engine's kernels.

    python examples/keras_mnist.py [EPOCHS]

The seven steps of the Keras workflow: create a model, add layers (Dense 512 ReLU, Dropout,
Dense 256 tanh, Dropout, Dense 10 softmax: a different activation per layer), compile,
fit, evaluate, predict, save. Porting a Keras script means changing its imports. Full
MNIST when it is here, else the embedded sample (4,000 training images).
"""

import sys

import numpy as np

import engine
from engine import datasets, layers, optimizers

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 10

data = datasets.load_mnist_or_sample(dtype="float32")
print(f"Data: {data.name}: {data.describe()}")
x_train, y_train = data.train
x_test, y_test = data.test

model = engine.Sequential(seed=0)                         # 1. create a model
model.add(layers.Input((784,)))                           # 2. add layers
model.add(layers.Dense(512, activation="relu"))
model.add(layers.Dropout(0.2))
model.add(layers.Dense(256, activation="tanh"))
model.add(layers.Dropout(0.2))
model.add(layers.Dense(10, activation="softmax"))
model.summary()

model.compile(optimizer=optimizers.SGD(learning_rate=0.01, momentum=0.9, nesterov=True),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])      # 3. compile
history = model.fit(x_train, y_train, batch_size=32, epochs=epochs,              # 4. fit
                    validation_split=0.1, verbose=1)
loss, accuracy = model.evaluate(x_test, y_test, verbose=0)                       # 5. evaluate
print(f"test loss: {loss:.4f} - test accuracy: {accuracy:.4f}")
probabilities = model.predict(x_test[:5], verbose=0)                             # 6. predict
print("predicted digits:", np.argmax(probabilities, axis=1), "true:", y_test[:5])
path = model.save("keras_mnist.npz")                                             # 7. save
restored = engine.load(path)
print(f"saved to {path}; the restored model agrees: "
      f"{np.array_equal(restored.predict(x_test, verbose=0), model.predict(x_test, verbose=0))}")
