"""Boston house prices by linear regression, in the NumPy course's five steps.

    python examples/housing.py [EPOCHS]

1. data: read the table, split it 80/20 in file order, normalise each column with the
   training part's statistics, (x - mean) / (max - min);
2. model: one linear unit, z = w·x + b: a [13, 1] network with identity activation;
3. training setup: quadratic cost, mini-batches of 10, learning rate 0.1, shuffled each epoch;
4. training: run the epochs and plot the loss curve;
5. save: write the model, normalisation included, load it back and predict raw rows.

Writes housing_model.npz and housing_loss.png to the current folder.
"""

import sys

import numpy as np

import engine
from engine import datasets, plots

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 100

# 1. Data. The statistics come from the training part only and travel with the model, so
#    the model takes raw rows, and its predictions come back in $1000s.
data = datasets.load_housing()
(X_train, y_train), _, (X_test, y_test) = data
print(f"Data: {data.name}: {data.describe()}")

# 2. Model.
net = engine.Network([13, 1], activation="identity", output="identity", seed=0)
net.normalization = data.normalization

# 3. Training setup (cost ½(z - y)², averaged over each mini-batch).
batch_size, lr = 10, 0.1

# 4. Training, and the loss curve.
history = net.fit(X_train, y_train, epochs=epochs, batch_size=batch_size, lr=lr,
                  validation_data=(X_test, y_test))
print(f"loss after epoch 0: {history['loss'][0]:.4f}; after epoch {epochs - 1}: "
      f"{history['loss'][-1]:.4f} (test: {history['val_loss'][-1]:.4f})")
plots.learning_curves({"loss": history["loss"], "test_loss": history["val_loss"]},
                      "housing_loss.png", title="Boston housing: loss per epoch")
print("loss curve: housing_loss.png")

# 5. Save, load back, predict in dollars.
path = net.save("housing_model.npz")
model = engine.load(path)
predicted = model.predict(X_test)
rmse = np.sqrt(np.mean((predicted - y_test) ** 2))
print(f"saved {path}; reloaded, its test error is {rmse:.2f} thousand dollars (RMS)")
for row in range(3):
    print(f"house {row}: predicted {predicted[row]:.1f}, actual {y_test[row]:.1f} ($1000s)")
