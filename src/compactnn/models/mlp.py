"""Deep structured MLPs: DCNN (Araujo et al. 2020), dense MLP, any registered family."""

from __future__ import annotations

from torch import Tensor, nn

from ..config import check_kwargs
from ..init import aware_variances
from ..layers.registry import get_layer_class
from ..registry import register
from .activations import make_activation


def _positive_int(name: str, v, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {v!r}")
    return v


@register("mlp", kind="model")
class StructuredMLP(nn.Module):
    """``depth`` hidden structured layers of width ``width`` and a classifier layer.

    Hidden layer ``i`` (1-based) is followed by ``[BatchNorm1d] → activation`` when
    ``i % nonlinearity_every == 0`` and by nothing (identity) otherwise — the paper's
    "ReLU every k layers" schedule. The first hidden layer maps ``in_features → width``
    (rectangular when they differ); the classifier maps ``width → num_classes`` with the family
    ``classifier`` (default: the same family as the hidden layers). Inputs of shape
    ``(batch, *)`` are flattened. ``input_batchnorm`` normalises the inputs first (the DC
    paper's scattering + BatchNorm + DC architecture).

    ``init`` is passed to every layer of the hidden family (and to the classifier when it is of
    that family); ``init="aware"`` gives layer ℓ the paper's scheme with the circulant variance
    of :func:`compactnn.init.aware_variances` — 1/g of the activation that follows it, 1 where
    none does — so that ``E||z||²`` at initialization is the same at every depth whatever the
    activation schedule (the paper's ``"paper"`` keeps it only with a ReLU after every layer).
    It needs an activation with a scale-free gain (relu, leaky_relu, identity) and a family
    that takes ``init``; Dropout's 1/(1−p) rescaling in training is not compensated.

    Example — the paper's "DCNN (k layers)" on flattened CIFAR-10 has
    ``9,216·k + 3,092`` parameters: ``StructuredMLP(3072, 10, layer="dc", depth=k)``.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        layer: str = "dc",
        width: int | None = None,
        depth: int = 1,
        activation: str = "leaky_relu",
        negative_slope: float = 0.5,
        nonlinearity_every: int = 1,
        batchnorm: bool = False,
        classifier: str | None = None,
        dropout: float = 0.0,
        init: str | None = None,
        layer_kwargs: dict | None = None,
        input_batchnorm: bool = False,
    ) -> None:
        super().__init__()
        _positive_int("in_features", in_features)
        _positive_int("num_classes", num_classes)
        width = in_features if width is None else _positive_int("width", width)
        _positive_int("depth", depth, minimum=0)
        _positive_int("nonlinearity_every", nonlinearity_every)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        make_activation(activation, negative_slope)  # validate early
        hidden_cls = get_layer_class(layer)
        classifier = layer if classifier is None else classifier
        clf_cls = get_layer_class(classifier)
        kw = dict(layer_kwargs or {})
        if init is not None:
            kw["init"] = init
        kw = check_kwargs(f"layer {layer!r}", hidden_cls, kw)
        variances = (aware_variances(depth, activation, negative_slope, nonlinearity_every)
                     if init == "aware" else None)

        def layer_kw(i: int) -> dict:  # layer i's keywords (1-based; depth + 1: classifier)
            return kw if variances is None else {**kw, "init": f"paper:{variances[i - 1]:.17g}"}

        self.config = dict(in_features=in_features, num_classes=num_classes, layer=layer,
                           width=width, depth=depth, activation=activation,
                           negative_slope=negative_slope, nonlinearity_every=nonlinearity_every,
                           batchnorm=batchnorm, classifier=classifier, dropout=dropout,
                           init=init, layer_kwargs=dict(layer_kwargs or {}),
                           input_batchnorm=input_batchnorm)

        blocks: list[nn.Module] = [nn.BatchNorm1d(in_features)] if input_batchnorm else []
        fan_in = in_features
        for i in range(1, depth + 1):
            blocks.append(hidden_cls(fan_in, width, **layer_kw(i)))
            if i % nonlinearity_every == 0:
                if batchnorm:
                    blocks.append(nn.BatchNorm1d(width))
                blocks.append(make_activation(activation, negative_slope, inplace=True))
                if dropout > 0:
                    blocks.append(nn.Dropout(dropout))
            fan_in = width
        clf_kw = layer_kw(depth + 1) if classifier == layer else {}
        blocks.append(clf_cls(fan_in, num_classes, **clf_kw))
        self.net = nn.Sequential(*blocks)

    @staticmethod
    def predicted_num_params(in_features: int, num_classes: int, *, layer: str = "dc",
                             width: int | None = None, depth: int = 1,
                             nonlinearity_every: int = 1, batchnorm: bool = False,
                             classifier: str | None = None, layer_kwargs: dict | None = None,
                             input_batchnorm: bool = False, **_) -> int:
        """Trainable-parameter count from the families' formulas, without building the model."""
        width = in_features if width is None else width
        kw = dict(layer_kwargs or {})
        hidden = get_layer_class(layer)
        classifier = layer if classifier is None else classifier
        total, fan_in = (2 * in_features if input_batchnorm else 0), in_features
        for i in range(1, depth + 1):
            total += hidden.num_params(fan_in, width, **kw)
            if batchnorm and i % nonlinearity_every == 0:
                total += 2 * width
            fan_in = width
        clf_kw = kw if classifier == layer else {}
        return total + get_layer_class(classifier).num_params(fan_in, num_classes, **clf_kw)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() > 2:
            x = x.flatten(1)
        return self.net(x)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


@register("dcnn", kind="model")
class DCNN(StructuredMLP):
    """Deep diagonal-circulant network (Araujo et al. 2020): :class:`StructuredMLP` with DC
    layers, the paper's init and leaky-ReLU (slope 0.5) by default."""

    def __init__(self, in_features: int, num_classes: int, **kwargs) -> None:
        if kwargs.setdefault("layer", "dc") != "dc":
            raise ValueError("DCNN always uses 'dc' layers; for other families use model 'mlp' "
                             "(StructuredMLP)")
        super().__init__(in_features, num_classes, **kwargs)


@register("dense-mlp", kind="model")
class MLP(StructuredMLP):
    """Dense MLP baseline with the same interface as :class:`DCNN` (``nn.Linear``-like layers)."""

    def __init__(self, in_features: int, num_classes: int, **kwargs) -> None:
        if kwargs.setdefault("layer", "dense") != "dense":
            raise ValueError("MLP always uses 'dense' layers; use StructuredMLP for other families")
        kwargs.setdefault("activation", "relu")
        super().__init__(in_features, num_classes, **kwargs)


@register("shl", kind="model")
class SHL(StructuredMLP):
    """Single hidden structured layer, the protocol of the LDR comparisons (Thomas et al. 2018;
    Table 1 of Araujo et al. 2020): ``structured(in → width) → ReLU → Dense(width → classes)``."""

    def __init__(self, in_features: int, num_classes: int, *, layer: str = "dc", **kwargs) -> None:
        for key, fixed in (("depth", 1), ("classifier", "dense")):
            if kwargs.pop(key, fixed) != fixed:
                raise ValueError(f"SHL fixes {key}={fixed!r}; use StructuredMLP to change it")
        kwargs.setdefault("activation", "relu")
        super().__init__(in_features, num_classes, layer=layer, depth=1, classifier="dense",
                         **kwargs)
