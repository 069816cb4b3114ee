"""SlowFast's input normalisation (pytorchvideo Kinetics recipe): /255, mean 0.45, std 0.225 per channel."""

from rqvqa.preprocess import Normalization

CHUNKS = Normalization((0.45, 0.45, 0.45), (0.225, 0.225, 0.225))
