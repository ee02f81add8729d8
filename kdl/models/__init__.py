"""Model builders: every one returns a compiled ``kdl.keras.Model``."""

from kdl.models.cnn import build_cnn
from kdl.models.mlp import build_mlp
from kdl.models.multitask import build_multitask
from kdl.models.resnet import build_resnet
from kdl.models.rnn import build_gru, build_lstm, build_rnn
from kdl.models.seq2seq import build_seq2seq, greedy_decode

__all__ = [
    "build_mlp",
    "build_cnn",
    "build_resnet",
    "build_rnn",
    "build_lstm",
    "build_gru",
    "build_seq2seq",
    "greedy_decode",
    "build_multitask",
]
