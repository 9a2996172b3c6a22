"""Small transformers: a vision transformer (``vit_tiny``) and a causal language model
(``causal_lm_tiny``), written for analog tiles.

Every projection is an ``nn.Linear`` (patch embedding; q, k, v and output of attention; the two
layers of each MLP; the classifier and language-model heads), so
:func:`analogsim.convert` puts each on tiles. The attention products QKᵀ and ·V are computed
digitally by ``F.scaled_dot_product_attention``, as on today's chips; LayerNorm, GELU, the
position embeddings and the token embedding (an ``nn.Embedding``: a table lookup, not a matrix
product) stay digital. Blocks are pre-norm (GPT-2, ViT): x + attention(LN(x)), then
x + MLP(LN(x)).

Modules are registered in the order the forward calls them (q, k, v, out; fc1, fc2), so the
walking-noise order of :func:`analogsim.profiling.noise_sites` follows the data flow.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from analogsim.errors import ShapeError, SpecError
from analogsim.models.blocks import check_image_shape, check_positive

#: std of the normal initialisation of position embeddings (ViT, GPT-2: 0.02).
POSITION_STD = 0.02


class SelfAttention(nn.Module):
    """Multi-head self-attention with four ``nn.Linear`` projections.

    Args:
        dim: model width (features per token).
        heads: attention heads; must divide ``dim``.
        causal: mask each position from the positions after it (a language model).

    Shape:
        input and output: (B, T, dim).
    """

    def __init__(self, dim: int, heads: int, *, causal: bool) -> None:
        super().__init__()
        if dim % heads:
            raise SpecError(f"attention: dim={dim} is not a multiple of heads={heads}")
        self.heads, self.causal = heads, causal
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.reshape(b, t, self.heads, d // self.heads).transpose(1, 2)  # (B, nh, T, hs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self._split(self.q(x)), self._split(self.k(x)), self._split(self.v(x))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)  # (B, nh, T, hs)
        return self.out(y.transpose(1, 2).reshape(b, t, d))

    def extra_repr(self) -> str:
        return f"heads={self.heads}, causal={self.causal}"


class FeedForward(nn.Module):
    """The MLP of a block: Linear (dim → hidden), GELU, Linear (hidden → dim)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attention(LN(x)), then x + MLP(LN(x)).

    Shape:
        input and output: (B, T, dim).
    """

    def __init__(self, dim: int, heads: int, mlp_hidden: int, *, causal: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads, causal=causal)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """A small ViT: non-overlapping patches, a Linear patch embedding, learned position
    embeddings, pre-norm blocks, mean pooling over patches, LayerNorm, Linear head.

    Mean pooling instead of a class token: on a few thousand images it trains in fewer epochs
    and leaves one position embedding less.

    Shape:
        input: (B, *input_shape) or (B, C·H·W); output: (B, num_classes) logits.
    """

    def __init__(self, input_shape: Sequence[int], patch_size: int, dim: int, depth: int,
                 heads: int, mlp_hidden: int, num_classes: int) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        channels, height, width = self.input_shape
        self.patch_size = patch_size
        patches = (height // patch_size) * (width // patch_size)
        self.patch_embed = nn.Linear(channels * patch_size * patch_size, dim)
        self.position = nn.Parameter(torch.randn(1, patches, dim) * POSITION_STD)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_hidden, causal=False)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) or (B, C·H·W) → (B, patches, C·p·p), row-major over the patch grid."""
        channels, height, width = self.input_shape
        if x[0].numel() != channels * height * width:
            raise ShapeError(f"vit_tiny: input of shape {tuple(x.shape)}; expected (B, "
                             f"{channels}, {height}, {width}) or (B, {channels * height * width})")
        p = self.patch_size
        x = x.reshape(x.shape[0], channels, height, width)
        x = x[:, :, : height - height % p, : width - width % p]  # whole patches only
        x = x.unfold(2, p, p).unfold(3, p, p)  # (B, C, H/p, W/p, p, p)
        return x.permute(0, 2, 3, 1, 4, 5).reshape(x.shape[0], -1, channels * p * p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(self.patches(x)) + self.position  # (B, N, dim)
        for block in self.blocks:
            tokens = block(tokens)
        return self.head(self.norm(tokens).mean(dim=1))


class CausalLanguageModel(nn.Module):
    """A small GPT: token and learned position embeddings (lookups), causal pre-norm blocks,
    LayerNorm, Linear head (not tied to the embedding: the head is on tiles, the table not).

    Shape:
        input: (B, T) int64 token ids, T ≤ context; output: (B, T, vocab_size) logits of the
        next token at every position.
    """

    def __init__(self, vocab_size: int, context: int, dim: int, depth: int, heads: int,
                 mlp_hidden: int) -> None:
        super().__init__()
        self.context = context
        self.token_embedding = nn.Embedding(vocab_size, dim)
        self.position_embedding = nn.Embedding(context, dim)
        for table in (self.token_embedding, self.position_embedding):
            nn.init.normal_(table.weight, std=POSITION_STD)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_hidden, causal=True)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.shape[1] > self.context or tokens.is_floating_point():
            raise ShapeError(f"causal_lm_tiny: input {tokens.dtype} of shape "
                             f"{tuple(tokens.shape)}; expected (B, T ≤ {self.context}) token ids")
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.token_embedding(tokens) + self.position_embedding(positions)  # (B, T, dim)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def vit_tiny(*, input_shape: Sequence[int] = (1, 28, 28), patch_size: int = 7, dim: int = 64,
             depth: int = 2, heads: int = 4, mlp_hidden: int = 128,
             num_classes: int = 10) -> VisionTransformer:
    """A small vision transformer (defaults: 16 patches of 7×7 for MNIST, width 64, 2 blocks
    of 4 heads, MLP 128; 14 Linear layers, 70,282 weights and biases on tiles).

    Args:
        input_shape: (channels, height, width) of one image; height and width ≥ patch_size
            (a remainder smaller than a patch is cropped).
        patch_size: side of a square patch, in pixels.
        dim: model width.
        depth: transformer blocks.
        heads: attention heads; must divide ``dim``.
        mlp_hidden: width of each block's MLP.
        num_classes: outputs (logits).

    Shape:
        input: (B, *input_shape) or (B, C·H·W); output: (B, num_classes).
    """
    channels, height, width = check_image_shape("vit_tiny", input_shape)
    check_positive("vit_tiny", patch_size=patch_size, dim=dim, depth=depth, heads=heads,
                   mlp_hidden=mlp_hidden, num_classes=num_classes)
    if patch_size > min(height, width):
        raise SpecError(f"model 'vit_tiny': patch_size={patch_size} is larger than the image "
                        f"({height}×{width})")
    return VisionTransformer((channels, height, width), patch_size, dim, depth, heads,
                             mlp_hidden, num_classes)


def causal_lm_tiny(*, vocab_size: int = 98, context: int = 64, dim: int = 64, depth: int = 2,
                   heads: int = 4, mlp_hidden: int = 256) -> CausalLanguageModel:
    """A small causal (GPT-style) language model (defaults: the 98 characters of
    ``stdlib_text``, 64 positions, width 64, 2 blocks of 4 heads, MLP 256; 13 Linear layers
    with 105,826 weights and biases on tiles, 10,368 embedding entries digital).

    Args:
        vocab_size: tokens in the vocabulary (``DataSplit.num_classes`` of the text).
        context: the most positions a sequence may have.
        dim: model width.
        depth: transformer blocks.
        heads: attention heads; must divide ``dim``.
        mlp_hidden: width of each block's MLP.

    Shape:
        input: (B, T ≤ context) int64 token ids; output: (B, T, vocab_size) logits.
    """
    check_positive("causal_lm_tiny", vocab_size=vocab_size, context=context, dim=dim,
                   depth=depth, heads=heads, mlp_hidden=mlp_hidden)
    return CausalLanguageModel(vocab_size, context, dim, depth, heads, mlp_hidden)
