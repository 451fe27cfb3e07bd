"""VQ-VAE tokenizer (frame ↔ 36 tokens) and the offline LPIPS perceptual loss (docs/official_jowa.md §2)."""

from jowa.tokenizer.lpips import LPIPS, LPIPSWeightsError, load_lpips, lpips_state_dict
from jowa.tokenizer.nets import AttnBlock, Decoder, Downsample, Encoder, ResnetBlock, Upsample
from jowa.tokenizer.quantizer import Codebook
from jowa.tokenizer.tokenizer import Tokenizer, TokenizerEncoding, TokenizerLosses

__all__ = [
    "LPIPS",
    "AttnBlock",
    "Codebook",
    "Decoder",
    "Downsample",
    "Encoder",
    "LPIPSWeightsError",
    "ResnetBlock",
    "Tokenizer",
    "TokenizerEncoding",
    "TokenizerLosses",
    "Upsample",
    "load_lpips",
    "lpips_state_dict",
]
