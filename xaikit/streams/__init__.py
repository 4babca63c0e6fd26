"""CA-Stream: attention-based pooling in parallel to a frozen CNN (thesis ch.3, CVPRW 2024).

    stream = xk.streams.CAStream.wrap(model, start_stage=0, variant="ca", class_specific=False)
    logits = stream(x)                 # x normalized as for `model`
    att = stream.attention(x)          # (B, h, w) raw attention that replaces GAP
    xk.streams.complexity(stream)      # Table 3.3: parameters and GFLOPs, GAP vs CA
"""
from .block import CABlock, ProjCABlock, cross_attention
from .stream import CAStream, complexity, count_parameters, gflops

__all__ = ["CAStream", "CABlock", "ProjCABlock", "cross_attention", "complexity", "count_parameters", "gflops"]
