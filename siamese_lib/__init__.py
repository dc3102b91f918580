"""siamese_lib: Siamese networks and one-shot learning in PyTorch.

The library behind the book. Layers, bottom to top: data -> pairs and episodes ->
nets and losses -> training and evaluation -> plots and widgets. Importing it needs
neither Jupyter nor a display: matplotlib and ipywidgets load only in ``plots`` and
``widgets``.
"""

from .augment import RandomAffine
from .checkpoint import load_checkpoint, save_checkpoint
from .classifier import OneShotClassifier, Predictions, predict_classes
from .config import cache_dir, data_root, seed_everything
from .data import load_dataset
from .distances import euclidean, pairwise_euclidean
from .episodes import Episodes, EpisodeSampler, split_episode
from .evaluate import (
    Accuracy,
    accuracy_at_threshold,
    best_threshold,
    embed_images,
    lake_runs_accuracy,
    one_shot_accuracy,
    roc_curve,
)
from .export import export_onnx, export_torchscript
from .folders import image_files, load_image_folder, load_images
from .imageset import ImageSet
from .losses import (
    BatchContrastiveLoss,
    ContrastiveLoss,
    KochLoss,
    PrototypicalLoss,
    TripletLoss,
)
from .nets import Classifier, EmbeddingNet, KochNet, ShiftAveraged, SiameseNetwork
from .pairs import ClassBalancedBatchSampler, PairSampler, class_balanced_batches, pair_batches
from .precision import pick_device
from .train import History, fit

__version__ = "0.1.0"

__all__ = [
    "Accuracy", "BatchContrastiveLoss", "ClassBalancedBatchSampler", "Classifier",
    "ContrastiveLoss", "EmbeddingNet", "EpisodeSampler", "Episodes", "History", "KochLoss",
    "KochNet", "OneShotClassifier", "PairSampler", "Predictions", "PrototypicalLoss",
    "RandomAffine", "ShiftAveraged", "SiameseNetwork",
    "TripletLoss", "accuracy_at_threshold", "best_threshold", "cache_dir",
    "class_balanced_batches", "data_root", "embed_images", "euclidean", "export_onnx",
    "export_torchscript", "fit",
    "lake_runs_accuracy", "load_checkpoint", "one_shot_accuracy", "pair_batches",
    "pairwise_euclidean", "pick_device", "predict_classes", "roc_curve", "save_checkpoint", "seed_everything",
    "split_episode",
    "ImageSet", "image_files", "load_dataset", "load_image_folder", "load_images",
]
