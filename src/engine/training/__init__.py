"""The training loop and everything around it: optimisers, learning-rate schedules, L2,
dropout, early stopping, monitoring, callbacks and checkpoints.

:meth:`engine.Network.fit` validates its arguments here (:func:`options`), then runs
:func:`run`, whose epochs run in :func:`train_epochs`, the one epoch loop every entry point
shares. Modules: :mod:`.options` (the checks of fit's options, sample weights),
:mod:`.schedules`, :mod:`.callbacks` (early stopping, callbacks), :mod:`.plan` (what a
backend receives), :mod:`.checkpoint` and :mod:`.loop`. The numbers themselves are computed by the backends: the NumPy oracle
(:mod:`engine.oracle`) and the compiled kernels, which receive a :class:`Plan` (plain
arrays and integer codes) for each call.

Optimisers (``optimizer=``), each ``torch.optim``'s documented rule applied to the mean
gradient g = Σ∇/m of the mini-batch; ``lr`` is torch's ``lr``:

============  ==================================  ==========================================
name          torch.optim equivalent              update
============  ==================================  ==========================================
"sgd"         SGD(lr)                             p ← p − (lr/m)·Σ∇ (Nielsen's rule)
"momentum"    SGD(lr, momentum=μ)                 b ← μ·b + g; p ← p − lr·b
"nesterov"    SGD(lr, momentum=μ, nesterov=True)  b ← μ·b + g; p ← p − lr·(g + μ·b)
"adagrad"     Adagrad(lr, eps=ε)                  s ← s + g²; p ← p − lr·g/(√s + ε)
"rmsprop"     RMSprop(lr, alpha=ρ, eps=ε)         v ← ρ·v + (1 − ρ)·g²; p ← p − lr·g/(√v + ε)
"adam"        Adam(lr, betas=(β1, β2), eps=ε)     bias-corrected moments, see oracle.adam_update
============  ==================================  ==========================================

The same ideas as scikit-learn's MLP and Keras write them (``kernels/codes.py``):

====================  ======================================  ================================
name                  scikit-learn / Keras                    update
====================  ======================================  ================================
"velocity"            solver="sgd" / SGD(momentum=μ)          v ← μ·v − lr·g; p ← p + v
"velocity_nesterov"   nesterovs_momentum / nesterov=True      v ← μ·v − lr·g;
                                                              p ← p + μ·v − lr·g
"adam_folded"         solver="adam" / Adam                    p ← p − lr_t·m/(√v + ε),
                                                              lr_t = lr·√(1 − β2ᵗ)/(1 − β1ᵗ)
"rmsprop_eps_inside"  Keras' RMSprop(rho=ρ, epsilon=ε)        v ← ρ·v + (1 − ρ)·g²;
                                                              p ← p − lr·g/√(v + ε)
"adagrad_eps_inside"  Keras' Adagrad(epsilon=ε)               s ← s + g²; p ← p − lr·g/√(s + ε)
====================  ======================================  ================================

L2 (``l2=λ``) is network2's: the cost gains (λ/2n)·Σw² over the weights (not biases, not
batch-norm γ/β), n the number of training samples. For "sgd" the update is network2's
w ← (1 − lr·λ/n)·w − (lr/m)·Σ∇; the other optimisers add (λ/n)·w to g first, which is
torch's (coupled) ``weight_decay=λ/n``.
"""

from .callbacks import EarlyStopping, call_callback, check_callbacks
from .checkpoint import checkpoint_state
from .loop import l2_penalty, run, split_validation, train_epochs
from .options import OPTIMIZERS, Options, dropout_rates, options, sample_weights
from .plan import Plan
from .schedules import (SCHEDULES, Constant, InvScaling, ReduceOnPlateau, StepDecay, schedule,
                        scheduled_rate)

__all__ = ["OPTIMIZERS", "SCHEDULES", "Constant", "EarlyStopping", "InvScaling", "Options",
           "Plan", "ReduceOnPlateau", "StepDecay", "call_callback", "check_callbacks",
           "checkpoint_state", "dropout_rates", "l2_penalty", "options", "run", "sample_weights",
           "schedule", "scheduled_rate", "split_validation", "train_epochs"]
