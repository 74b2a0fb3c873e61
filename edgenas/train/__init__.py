"""Supernet training (sandwich rule + in-place distillation), scoring, stand-alone training."""

from edgenas.train.evaluate import SupernetEvaluator, accuracy, recalibrate_bn
from edgenas.train.loop import TrainConfig
from edgenas.train.placement import Placement, place
from edgenas.train.subnet_sampling import largest_arch, sandwich, smallest_arch
from edgenas.train.standalone import train_arch
from edgenas.train.supernet_training import load_supernet, supernet_evaluator, train_supernet

__all__ = ["Placement", "SupernetEvaluator", "TrainConfig", "accuracy", "largest_arch",
           "load_supernet", "place", "recalibrate_bn", "sandwich", "smallest_arch",
           "supernet_evaluator", "train_arch", "train_supernet"]
