"""Load stage: models (always in Keras safe mode) and images."""

from qcheck.load.bundled import bundled_images
from qcheck.load.images import ImageSet, ModelFeed, images_from_arrays, load_folder
from qcheck.load.model import LoadedModel, ModelHandle, load_model, model_from_memory

__all__ = [
    "ImageSet",
    "LoadedModel",
    "ModelFeed",
    "ModelHandle",
    "bundled_images",
    "images_from_arrays",
    "load_folder",
    "load_model",
    "model_from_memory",
]
