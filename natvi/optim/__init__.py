"""Optimizers as init/update pairs: the natural gradient and Euclidean comparison modes."""

from natvi.optim.anderson import anderson
from natvi.optim.base import Evaluation, Info, Optimizer
from natvi.optim.euclidean import adadelta, adagrad, adam, momentum, rmsprop, sgd
from natvi.optim.natural_gradient import natural_gradient

#: names ``natvi.fit(optimizer=...)`` accepts as strings, each with its defaults
SHORTCUTS = {
    "ngd": natural_gradient,
    "natural_gradient": natural_gradient,
    "sgd": sgd,
    "momentum": momentum,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adadelta": adadelta,
    "adam": adam,
}

__all__ = ["Evaluation", "Info", "Optimizer", "SHORTCUTS", "adadelta", "adagrad", "adam",
           "anderson", "momentum", "natural_gradient", "rmsprop", "sgd"]
