"""Analog multi-head attention: ``nn.MultiheadAttention`` with its four projections on tiles.

:class:`AnalogMultiheadAttention` holds the q, k, v and output projections as
:class:`~analogsim.tiles.layers.AnalogLinear` children (``q_proj``, ``k_proj``, ``v_proj``,
``out_proj``), so programming, drift, the training methods and ``analog_layers`` find them as
they find any layer. The two activation × activation products, QKᵀ and the attention weights
times V, have no stored operand to program: they stay digital, computed as torch computes them,
unless :attr:`~AnalogMultiheadAttention.product_noise` passes each through an activation-noise
law (:mod:`analogsim.profiling.noise_laws`) drawn from the module's own seeded generator.

torch's transformer layers read ``self_attn.in_proj_weight`` and ``in_proj_bias`` to decide on
fused inference fast paths (``nn.TransformerEncoderLayer``'s fused kernel,
``nn.TransformerEncoder``'s nested tensors) that would multiply those weights digitally. Here
they are read-only :class:`TileWeights` copies: a tensor subclass, for which torch's
``has_torch_function`` is true, so those paths decline and the layers call this ``forward``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from analogsim.cards import Chip, load_chip
from analogsim.errors import ArgumentTypeError, ConversionError, ShapeError, UsageError
from analogsim.profiling.noise_laws import AdditiveNoise, MixedNoise, MultiplicativeNoise, NoiseLaw
from analogsim.seeding import Purpose, derive_seed
from analogsim.tiles.layers import AnalogLinear


class TileWeights(torch.Tensor):
    """A detached copy of weights that live on analog tiles; changing it changes nothing.

    Being a tensor subclass, it makes torch's fused attention fast paths decline (see the
    module docstring); as a tensor it computes like any other.
    """


def _additive_mask(mask: Tensor | None, name: str, where: str, dtype: torch.dtype
                   ) -> Tensor | None:
    """A bool mask (True: may not attend) as a float mask of ``dtype`` with −inf there; a float
    mask as given (added to the scores)."""
    if mask is None or torch.is_floating_point(mask):
        return mask
    if mask.dtype != torch.bool:
        raise ArgumentTypeError(f"{where}: the '{name}' must be a bool or floating-point "
                                f"tensor; got dtype {mask.dtype}")
    return torch.zeros_like(mask, dtype=dtype).masked_fill_(mask, float("-inf"))


def _text(shape: tuple[Any, ...]) -> str:
    """A shape as ``(5, 2, 8)``, symbols and numbers alike."""
    return "(" + ", ".join(str(size) for size in shape) + ")"


def _pad_key(mask: Tensor | None) -> Tensor | None:
    """``mask`` with one more key position (zero: attended), for bias_k or the zero key."""
    return None if mask is None else F.pad(mask, (0, 1))


class AnalogMultiheadAttention(nn.Module):
    """``nn.MultiheadAttention`` whose q, k, v and output projections are analog layers.

    Args:
        embed_dim, num_heads, dropout, bias, add_bias_kv, add_zero_attn, kdim, vdim,
        batch_first, device, dtype: as ``nn.MultiheadAttention``; the parameters are
            initialised as torch does, from the same draws in the same order.
        chip: the device card (a :class:`~analogsim.cards.Chip` or a card name/path).
        layer_index: the q projection's position in the model; k, v and the output projection
            take the next three (seed derivation).
        product_noise: ``None`` (default) keeps QKᵀ and (weights)·V exact and digital; an
            :class:`~analogsim.profiling.AdditiveNoise`, ``MultiplicativeNoise`` or
            ``MixedNoise`` perturbs each product with that law (σ in the unit of the product,
            QKᵀ taken after the 1/√head_dim scaling and before the masks), in training and
            eval mode. Also settable as an attribute.
        product_noise_seed: seed of the product-noise stream, derived with
            (seed, ``Purpose.ACTIVATION_NOISE``, layer_index); :meth:`reseed_product_noise`
            restarts it. The generator is made on the input's device (and made again, from
            the seed, if the input moves), never torch's global one.

    Shape:
        As ``nn.MultiheadAttention``: query (L, E), (L, N, E) or, with ``batch_first``,
        (N, L, E); key and value (S, kdim/vdim) likewise; key_padding_mask (N, S) or (S);
        attn_mask (L, S) or (N·num_heads, L, S). Output like query; weights (N, L, S), or
        (N, num_heads, L, S) without averaging, or None. With K programmed instances in eval
        mode, N = K·B instance-major (:func:`analogsim.instances_folded`), the batch dimension
        of key_padding_mask and of a 3-D attn_mask folded the same way; the projections see the
        batch first whatever ``batch_first`` says, so each instance's rows go through its chip.
        Product noise is drawn for the whole folded batch from one stream.

    Attributes:
        q_proj, k_proj, v_proj, out_proj: the projections, :class:`AnalogLinear`.
        bias_k, bias_v: digital parameters (1, 1, embed_dim) appended to keys and values, or
            None.
        in_proj_weight, in_proj_bias: torch's packed (3·E, E) weight and (3·E) bias, as
            read-only :class:`TileWeights` copies (in_proj_weight is None when kdim or vdim
            differ from embed_dim, as in torch).

    Examples::

        attention = AnalogMultiheadAttention(64, 4, batch_first=True, chip="pcm")
        attention.product_noise = AdditiveNoise(0.05)
        y, weights = attention(x, x, x)
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = False,
                 *, chip: Chip | str, layer_index: int = 0,
                 product_noise: NoiseLaw | None = None, product_noise_seed: int = 0,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise UsageError(f"AnalogMultiheadAttention needs an embed_dim divisible by "
                             f"num_heads, both ≥ 1; got embed_dim={embed_dim!r}, "
                             f"num_heads={num_heads!r}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.head_dim = embed_dim // num_heads
        self.dropout, self.batch_first, self.add_zero_attn = dropout, batch_first, add_zero_attn
        chip = load_chip(chip)
        device = torch.get_default_device() if device is None else device

        def projection(in_features: int, offset: int) -> AnalogLinear:
            # uninitialised, so that reset_parameters draws what torch draws
            return nn.utils.skip_init(AnalogLinear, in_features, embed_dim, bias, chip=chip,
                                      layer_index=layer_index + offset, device=device,
                                      dtype=dtype)

        self.q_proj, self.k_proj = projection(embed_dim, 0), projection(self.kdim, 1)
        self.v_proj, self.out_proj = projection(self.vdim, 2), projection(embed_dim, 3)
        factory = {"device": device, "dtype": dtype}
        self.bias_k = nn.Parameter(torch.empty(1, 1, embed_dim, **factory)) if add_bias_kv else None
        self.bias_v = nn.Parameter(torch.empty(1, 1, embed_dim, **factory)) if add_bias_kv else None
        self.product_noise = product_noise
        self.reseed_product_noise(product_noise_seed)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise as ``nn.MultiheadAttention`` does, from the same draws in the same order
        (the output projection's ``nn.Linear`` initialisation first, then one Xavier draw over
        the packed (3·E, E) weight, or one per separate projection)."""
        self.out_proj.reset_parameters()
        projections = (self.q_proj, self.k_proj, self.v_proj)
        with torch.no_grad():
            if self._qkv_same_embed_dim:
                weight = self.q_proj.weight
                packed = nn.init.xavier_uniform_(torch.empty(3 * self.embed_dim, self.embed_dim,
                                                             device=weight.device,
                                                             dtype=weight.dtype))
                for layer, part in zip(projections, packed.chunk(3), strict=True):
                    layer.weight.copy_(part)
            else:
                for layer in projections:
                    nn.init.xavier_uniform_(layer.weight)
            if self.q_proj.bias is not None:
                for layer in (*projections, self.out_proj):
                    layer.bias.zero_()
        if self.bias_k is not None:
            nn.init.xavier_normal_(self.bias_k)
            nn.init.xavier_normal_(self.bias_v)

    @classmethod
    def from_digital(cls, module: nn.MultiheadAttention, chip: Chip | str, layer_index: int = 0
                     ) -> AnalogMultiheadAttention:
        """An analog copy of ``module``: same weights, biases and options; draws no random
        numbers. Its projections take layer indices ``layer_index`` … ``layer_index + 3``."""
        bias = module.in_proj_bias is not None
        if (module.out_proj.bias is not None) != bias or (module.bias_k is None) != (
                module.bias_v is None):
            raise ConversionError(
                f"{type(module).__name__} has in_proj_bias {'set' if bias else 'None'} but "
                f"out_proj.bias {'set' if module.out_proj.bias is not None else 'None'} (or only "
                "one of bias_k, bias_v); nn.MultiheadAttention sets both or neither")
        reference = module.out_proj.weight
        layer = nn.utils.skip_init(
            cls, module.embed_dim, module.num_heads, module.dropout, bias,
            module.bias_k is not None, module.add_zero_attn, module.kdim, module.vdim,
            module.batch_first, chip=chip, layer_index=layer_index, device=reference.device,
            dtype=reference.dtype)
        with torch.no_grad():
            for digital, analog in layer.paired_parameters(module):
                analog.copy_(digital)
        return layer.train(module.training)

    def to_digital(self) -> nn.MultiheadAttention:
        """The ``nn.MultiheadAttention`` with these weights (packed when kdim = vdim =
        embed_dim, as torch packs it)."""
        reference = self.out_proj.weight
        module = nn.utils.skip_init(
            nn.MultiheadAttention, self.embed_dim, self.num_heads, self.dropout,
            self.q_proj.bias is not None, self.bias_k is not None, self.add_zero_attn,
            self.kdim, self.vdim, self.batch_first, device=reference.device,
            dtype=reference.dtype)
        with torch.no_grad():
            for digital, analog in self.paired_parameters(module):
                digital.copy_(analog)
        return module.train(self.training)

    def paired_parameters(self, module: nn.MultiheadAttention) -> list[tuple[Tensor, Tensor]]:
        """(tensor of ``module``, parameter of this layer) for every parameter of ``module``,
        an ``nn.MultiheadAttention`` of the same options; packed weights as views."""
        if self._qkv_same_embed_dim:
            weights = module.in_proj_weight.chunk(3)
        else:
            weights = (module.q_proj_weight, module.k_proj_weight, module.v_proj_weight)
        ours = self.projections()
        pairs = [*zip(weights, (p.weight for p in ours), strict=True),
                 (module.out_proj.weight, self.out_proj.weight)]
        if self.q_proj.bias is not None:
            pairs += [*zip(module.in_proj_bias.chunk(3), (p.bias for p in ours), strict=True),
                      (module.out_proj.bias, self.out_proj.bias)]
        if self.bias_k is not None:
            pairs += [(module.bias_k, self.bias_k), (module.bias_v, self.bias_v)]
        return pairs

    def projections(self) -> tuple[AnalogLinear, AnalogLinear, AnalogLinear]:
        """The q, k and v projections."""
        return self.q_proj, self.k_proj, self.v_proj

    @property
    def in_proj_weight(self) -> TileWeights | None:
        """torch's packed (3·E, E) q, k, v weight, a read-only copy; None when kdim or vdim
        differ from embed_dim."""
        if not self._qkv_same_embed_dim:
            return None
        return torch.cat([p.weight.detach() for p in self.projections()]).as_subclass(TileWeights)

    @property
    def in_proj_bias(self) -> TileWeights | None:
        """torch's packed (3·E) q, k, v bias, a read-only copy; None without biases."""
        if self.q_proj.bias is None:
            return None
        return torch.cat([p.bias.detach() for p in self.projections()]).as_subclass(TileWeights)

    @property
    def product_noise(self) -> NoiseLaw | None:
        """The law applied to QKᵀ and (weights)·V, or None (exact digital products)."""
        return self._product_noise

    @product_noise.setter
    def product_noise(self, law: NoiseLaw | None) -> None:
        if law is not None and not isinstance(law, AdditiveNoise | MultiplicativeNoise
                                              | MixedNoise):
            raise ArgumentTypeError(
                "The 'product_noise' of AnalogMultiheadAttention must be None, AdditiveNoise, "
                f"MultiplicativeNoise or MixedNoise (analogsim.profiling); got {law!r}")
        self._product_noise = law

    def reseed_product_noise(self, seed: int) -> None:
        """Restart the product-noise stream from ``seed`` (an int ≥ 0)."""
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise UsageError(f"The 'product_noise_seed' of AnalogMultiheadAttention must be an "
                             f"int ≥ 0; got {seed!r}")
        self.product_noise_seed = seed
        self._generator: torch.Generator | None = None

    def layer_name(self) -> str:
        """How an error names this module: its name in the model (set by ``convert``) or the
        layer index of its q projection, and its type."""
        name = self.q_proj.model_name.rpartition(".")[0]
        where = repr(name) if name else f"#{self.q_proj.tile.layer_index}"
        return f"layer {where} ({type(self).__name__})"

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        """Attention of ``query`` over ``key``/``value``, as ``nn.MultiheadAttention.forward``.

        Masks: bool (True: may not attend) or float (added to the scores). ``is_causal`` is a
        hint that ``attn_mask`` is the causal mask, which must be given too. Without
        ``need_weights`` and product noise the products go through
        ``F.scaled_dot_product_attention``; otherwise through an explicit softmax. Dropout on
        the attention weights in training mode only.

        Returns:
            (output, weights or None); see the class docstring for shapes.
        """
        batched = self._check_shapes(query, key, value, key_padding_mask, attn_mask)
        where = self.layer_name()
        if is_causal and attn_mask is None:
            raise UsageError(f"{where}: is_causal=True is a hint that attn_mask is "
                             "the causal mask; pass attn_mask too (e.g. nn.Transformer."
                             "generate_square_subsequent_mask(L)), as nn.MultiheadAttention "
                             "requires")
        padding = _additive_mask(key_padding_mask, "key_padding_mask", where, query.dtype)
        attn_mask = _additive_mask(attn_mask, "attn_mask", where, query.dtype)
        if not batched:  # a batch of one
            query, key, value = (x.unsqueeze(0) for x in (query, key, value))
            padding = None if padding is None else padding.unsqueeze(0)  # (N, S)
        elif not self.batch_first:  # tiles fold chip instances along a leading batch dimension
            query, key, value = (x.transpose(0, 1) for x in (query, key, value))
        q, k, v = self.q_proj(query), self.k_proj(key), self.v_proj(value)  # (N, L|S, E)
        explicit = need_weights or self.product_noise is not None
        if is_causal and padding is None and not explicit:
            attn_mask = None  # scaled_dot_product_attention builds it, as torch does
        else:
            is_causal = False
        n, heads = q.shape[0], self.num_heads
        if self.bias_k is not None:
            k = torch.cat([k, self.bias_k.expand(n, 1, -1)], dim=1)
            v = torch.cat([v, self.bias_v.expand(n, 1, -1)], dim=1)
            attn_mask, padding = _pad_key(attn_mask), _pad_key(padding)
        q, k, v = (x.unflatten(-1, (heads, self.head_dim)).transpose(1, 2)
                   for x in (q, k, v))  # (N, H, L|S, D)
        if self.add_zero_attn:
            zeros = k.new_zeros(n, heads, 1, self.head_dim)
            k, v = torch.cat([k, zeros], dim=2), torch.cat([v, zeros], dim=2)
            attn_mask, padding = _pad_key(attn_mask), _pad_key(padding)
        mask = attn_mask
        if mask is not None and mask.dim() == 3:  # (N·H, L, S) → (N, H, L, S)
            mask = mask.view(n, heads, *mask.shape[1:])
        if padding is not None:
            padding = padding.view(n, 1, 1, -1)
            mask = padding if mask is None else mask + padding
        dropout = self.dropout if self.training else 0.0
        weights = None
        if explicit:
            scores = self._product(q * math.sqrt(1.0 / self.head_dim), k.transpose(-2, -1))
            weights = torch.softmax(scores if mask is None else scores + mask, dim=-1)
            if dropout > 0.0:
                weights = F.dropout(weights, p=dropout)
            out = self._product(weights, v)  # (N, H, L, D)
        else:
            out = F.scaled_dot_product_attention(q, k, v, mask, dropout, is_causal=is_causal)
        out = self.out_proj(out.transpose(1, 2).flatten(2))  # (N, L, E)
        if not need_weights:
            weights = None
        elif average_attn_weights:
            weights = weights.mean(dim=1)
        if not batched:
            return out.squeeze(0), None if weights is None else weights.squeeze(0)
        return (out if self.batch_first else out.transpose(0, 1)), weights

    def _product(self, a: Tensor, b: Tensor) -> Tensor:
        """a @ b, perturbed by the product-noise law when one is set."""
        product = torch.matmul(a, b)
        if self.product_noise is None:
            return product
        if self._generator is None or self._generator.device != product.device:
            self._generator = torch.Generator(product.device).manual_seed(derive_seed(
                self.product_noise_seed, Purpose.ACTIVATION_NOISE, self.q_proj.tile.layer_index))
        return self.product_noise.sample(product, self._generator)

    def _check_shapes(self, query: Tensor, key: Tensor, value: Tensor,
                      key_padding_mask: Tensor | None, attn_mask: Tensor | None) -> bool:
        """Refuse inputs and masks of other shapes than ``forward`` takes; True if batched."""
        where = self.layer_name()
        if query.dim() not in (2, 3):
            raise ShapeError(f"{where}: query of shape {tuple(query.shape)}; expected (L, E) "
                             f"unbatched or 3 dimensions batched, E = embed_dim = "
                             f"{self.embed_dim}")
        batched = query.dim() == 3
        seq = 1 if batched and self.batch_first else 0  # the sequence axis
        n, length = query.shape[1 - seq] if batched else 1, query.shape[seq]
        source = key.shape[seq] if key.dim() == query.dim() else "S"

        def layout(batch: Any, size: Any, features: Any) -> tuple[Any, ...]:
            if not batched:
                return size, features
            return (batch, size, features) if self.batch_first else (size, batch, features)

        for name, x, size, features in (("query", query, length, self.embed_dim),
                                        ("key", key, source, self.kdim),
                                        ("value", value, source, self.vdim)):
            if tuple(x.shape) != layout(n, size, features):
                symbols = layout("N", *(("L", "E") if name == "query"
                                        else ("S", f"{name[0]}dim")))
                raise ShapeError(
                    f"{where}: {name} of shape {tuple(x.shape)}; expected "
                    f"{_text(layout(n, size, features))} = {_text(symbols)} for a query of "
                    f"shape {tuple(query.shape)} (batch_first={self.batch_first})")
        for name, mask, allowed in (
                ("key_padding_mask", key_padding_mask, [(n, source) if batched else (source,)]),
                ("attn_mask", attn_mask, [(length, source),
                                          (n * self.num_heads, length, source)])):
            if mask is not None and tuple(mask.shape) not in allowed:
                raise ShapeError(f"{where}: {name} of shape {tuple(mask.shape)}; expected "
                                 f"{' or '.join(_text(shape) for shape in allowed)} for a query "
                                 f"of shape {tuple(query.shape)} and a key of shape "
                                 f"{tuple(key.shape)}")
        return batched

    def extra_repr(self) -> str:
        dims = "" if self._qkv_same_embed_dim else f", kdim={self.kdim}, vdim={self.vdim}"
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}{dims}, "
                f"dropout={self.dropout}, add_zero_attn={self.add_zero_attn}, "
                f"batch_first={self.batch_first}, product_noise={self.product_noise}")
