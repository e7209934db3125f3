"""The low-cost ResNet family (``lowcost-resnet``): shapes on 28×28 and 32×32 inputs for every
operator × block, parameter and FLOP accounting (against FlopCounterMode), the recorded
config, the timing helper, argument errors; and the crop+flip augmentation of its CIFAR-10
training recipe (compactnn.data.augment, the loaders)."""

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from compactnn.config import RunConfig
from compactnn.conv import BLOCKS, available_convs
from compactnn.data import (
    AugmentedBatches,
    EpochBatches,
    augmented_loader,
    in_memory_loaders,
    random_crop_flip,
)
from compactnn.data.augment import apply_augmentation
from compactnn.data.datasets import Dataset
from compactnn.models import LowCostResNet, make_model, measure_cost
from compactnn.runs import build_model, model_args

TINY = dict(widths=[4, 6], steps=1)
CONV_ONLY = ("full", "lean", "separable")


pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.mark.parametrize("conv", available_convs())
@pytest.mark.parametrize("block", list(BLOCKS))
def test_every_operator_and_block_on_both_image_sizes(conv, block, fft_flops):
    for shape in ((1, 28, 28), (3, 32, 32)):
        n = math.prod(shape)
        model = make_model("lowcost-resnet", n, 10, input_shape=shape, conv=conv, block=block,
                           **TINY)
        assert model.input_shape == shape
        assert model(torch.randn(2, n)).shape == (2, 10)
        assert model(torch.randn(2, *shape)).shape == (2, 10)
        assert model.num_params() == sum(p.numel() for p in model.parameters())
        model.eval()
        with FlopCounterMode(display=False, custom_mapping=fft_flops) as mode:
            model(torch.randn(1, *shape))
        parts = model.flop_parts()
        assert model.flops() == sum(parts.values()) and min(parts.values()) >= 0
        # FlopCounterMode counts convolutions, matrix products and (mapped) FFTs, not the
        # norm's and pooling's elementwise work
        assert (parts["conv"] + parts["fft"] + parts["linear"]) * 2 == mode.get_total_flops()
        if conv in CONV_ONLY and block != "imex":
            with FlopCounterMode(display=False) as plain:
                model(torch.randn(1, *shape))
            assert (parts["conv"] + parts["linear"]) * 2 == plain.get_total_flops()


def test_norm_pool_and_linear_terms():
    model = LowCostResNet(784, 10, input_shape=(1, 28, 28), widths=[8, 16, 24], steps=2)
    parts = model.flop_parts()
    # norms: opening 8·28², 2 blocks per stage, transitions 16·28², 24·14²
    assert parts["norm"] == 8 * 784 + 2 * (8 * 784 + 16 * 196 + 24 * 49) + 16 * 784 + 24 * 196
    assert parts["pool"] == 16 * 784 + 24 * 196 + 24 * 49  # two 2×2 pools, global average
    assert parts["linear"] == 24 * 10
    assert parts["fft"] == 0
    none = LowCostResNet(784, 10, input_shape=(1, 28, 28), widths=[8, 16, 24], norm="none")
    assert none.flop_parts()["norm"] == 0
    assert none.flops((1, 56, 56)) > 3.9 * none.flops()  # cost scales with the map size
    lowrank = LowCostResNet(784, 10, widths=[8, 16], head="lowrank", head_kwargs={"rank": 2})
    assert lowrank.flop_parts()["linear"] == 2 * (16 + 10)


def test_structured_operators_cut_parameters_and_flops_against_full():
    kw = dict(input_shape=(3, 32, 32), widths=[32, 64], steps=2, block="explicit")
    full = LowCostResNet(3072, 10, conv="full", **kw)
    for conv in ("circulant", "dc", "lean", "separable"):
        small = LowCostResNet(3072, 10, conv=conv, **kw)
        assert small.num_params() < full.num_params() / 3, conv
        assert small.flops() < full.flops() / 2, conv


def test_config_records_every_argument_and_rebuilds_the_model():
    model = make_model("lowcost-resnet", 3072, 10, input_shape=(3, 32, 32), conv="circulant",
                       conv_kwargs={"channel_extent": 3}, block="imex", widths=[4, 8, 8],
                       steps=2, h=0.5, transition="operator")
    cfg = model.config
    assert cfg["diffusion_kernel"] == 3 and cfg["conv_kwargs"] == {"channel_extent": 3}
    assert cfg["widths"] == [4, 8, 8] and cfg["input_shape"] == [3, 32, 32] and cfg["h"] == 0.5
    import inspect
    assert set(inspect.signature(LowCostResNet).parameters) == set(cfg)
    run = RunConfig.from_dict({"model": {"name": "lowcost-resnet", "widths": [4, 8, 8]},
                               "data": {"name": "cifar10"}})
    run = run.replace(model=model_args(model, run))
    again = RunConfig.from_toml(run.to_toml())  # what config.toml holds reruns it
    rebuilt = build_model(again, (3, 32, 32), 10)
    assert rebuilt.config == cfg
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(2, 3072)
    model.eval(), rebuilt.eval()
    torch.testing.assert_close(rebuilt(x), model(x))
    plain = LowCostResNet(784, 10, block="symmetric", widths=[4])
    assert "diffusion_kernel" not in plain.config and plain.config["input_shape"] == [1, 28, 28]


def test_transition_with_the_operator_and_the_group_template_defaults():
    model = LowCostResNet(3072, 10)
    assert model.config["widths"] == [32, 64, 112, 112] and model.config["steps"] == 3
    assert len(model.stages) == 4 and all(len(s) == 3 for s in model.stages)
    assert model(torch.randn(2, 3072)).shape == (2, 10)
    op = LowCostResNet(784, 10, conv="lean", widths=[4, 8], steps=1, transition="operator")
    assert type(op.transitions[0][0]).__name__ == "LeanConv2d"


def test_measure_cost_returns_positive_times():
    model = LowCostResNet(784, 10, conv="lean", block="imex", widths=[4, 8], steps=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cost = measure_cost(model, (1, 28, 28), batch=4, repeats=2)
    assert cost["train_step_ms"] > 0 and cost["infer_ms_per_image"] > 0 and cost["batch"] == 4
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="batch must be a positive int"):
        measure_cost(model, (1, 28, 28), batch=0)


def test_trains_one_step_without_non_finite_values():
    torch.manual_seed(0)
    for block in BLOCKS:
        model = LowCostResNet(784, 10, conv="circulant", block=block, widths=[4, 8], steps=2)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=2e-4)
        x, y = torch.randn(8, 784), torch.randint(0, 10, (8,))
        losses = []
        for _ in range(3):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0], block


@pytest.mark.parametrize(("kw", "match"), [
    (dict(widths=[]), "widths must be a non-empty list"),
    (dict(widths=[4, 0]), "each width must be a positive int"),
    (dict(steps=0), "steps must be a positive int"),
    (dict(block="implicit"), "block must be one of"),
    (dict(transition="pool"), "transition must be one of"),
    (dict(norm="group"), "norm must be one of"),
    (dict(conv="bogus"), "unknown conv operator 'bogus'"),
    (dict(conv="lean", conv_kwargs={"rank": 3}), "does not take 'rank'"),
    (dict(head="bogus"), "unknown layer 'bogus'"),
    (dict(block="residual", diffusion_kernel=3), "diffusion_kernel applies to the explicit"),
    (dict(widths=[4] * 6), "too small for 6 stages"),
    (dict(input_shape=(3, 28, 28)), "does not hold 784 features"),
    (dict(h=-1.0), "h must be a positive finite number"),
])
def test_bad_arguments_raise_one_line_value_errors(kw, match):
    with pytest.raises(ValueError, match=match) as err:
        LowCostResNet(784, 10, **kw)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ crop + flip augmentation

def _reference_crop_flip(x, seed, padding):
    """Image by image with slicing, from the same draws as random_crop_flip."""
    gen = torch.Generator().manual_seed(seed)
    n, _, h, w = x.shape
    dy = torch.randint(0, 2 * padding + 1, (n, 1), generator=gen)
    dx = torch.randint(0, 2 * padding + 1, (n, 1), generator=gen)
    flip = torch.rand(n, 1, generator=gen) < 0.5
    xp = torch.nn.functional.pad(x, (padding,) * 4)
    out = []
    for i in range(n):
        crop = xp[i, :, dy[i, 0]:dy[i, 0] + h, dx[i, 0]:dx[i, 0] + w]
        out.append(crop.flip(-1) if flip[i, 0] else crop)
    return torch.stack(out)


def test_random_crop_flip_is_a_padded_crop_and_a_flip():
    x = torch.randn(16, 3, 8, 7)
    for seed in (0, 1, 2):
        out = random_crop_flip(x, torch.Generator().manual_seed(seed), padding=4)
        torch.testing.assert_close(out, _reference_crop_flip(x, seed, 4), rtol=0, atol=0)
    # padding 0: each image is itself or its mirror image
    out = random_crop_flip(x, torch.Generator().manual_seed(3), padding=0)
    assert all(torch.equal(o, i) or torch.equal(o, i.flip(-1)) for o, i in zip(out, x,
                                                                                strict=True))
    flat = torch.randn(5, 3 * 32 * 32)
    assert apply_augmentation("crop-flip", flat, (3, 32, 32), 7).shape == flat.shape
    assert torch.equal(apply_augmentation("crop-flip", flat, (3, 32, 32), 7),
                       apply_augmentation("crop-flip", flat, (3, 32, 32), 7))


def test_augmentation_arguments_are_checked():
    with pytest.raises(ValueError, match="unknown augmentation 'mixup'; available: crop-flip"):
        apply_augmentation("mixup", torch.randn(2, 64), (8, 8), 0)
    with pytest.raises(ValueError, match="needs image inputs"):
        apply_augmentation("crop-flip", torch.randn(2, 64), (64,), 0)
    with pytest.raises(ValueError, match="expects \\(N, C, H, W\\) images"):
        random_crop_flip(torch.randn(2, 8, 8), torch.Generator())


def _data(augment):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 3 * 6 * 6, generator=g), torch.arange(20) % 10
    return Dataset(name="toy", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4],
                   num_classes=10, input_shape=(3, 6, 6), source="test", augment=augment)


def test_loaders_augment_training_batches_only_and_replay_on_resume():
    plain = in_memory_loaders(_data(None), 8, 16, seed=3)
    aug = in_memory_loaders(_data("crop-flip"), 8, 16, seed=3)
    assert isinstance(aug["train"].sampler, AugmentedBatches)
    assert type(plain["train"].sampler) is EpochBatches
    x_test = next(iter(aug["test"]))[0]
    assert torch.equal(x_test, _data(None).x_test)  # evaluation data untouched
    epoch = [(x.clone(), y.clone()) for x, y in aug["train"]]
    assert [len(y) for _, y in epoch] == [8, 8, 4]
    assert sorted(torch.cat([y for _, y in epoch]).tolist()) == sorted(_data(None).y_train
                                                                      .tolist())
    data = _data(None)
    # each batch: the rows the sampler drew, augmented with the batch's seed, and their labels
    items = list(AugmentedBatches(20, 8, torch.Generator().manual_seed(3)))
    for (idx, seed), (xb, yb) in zip(items, epoch, strict=True):
        assert torch.equal(yb, data.y_train[idx])
        assert torch.equal(xb, apply_augmentation("crop-flip", data.x_train[idx], (3, 6, 6),
                                                  seed))
        assert not torch.equal(xb, data.x_train[idx])
    assert len({seed for _, seed in items}) == 3
    # resume mid-epoch: the skipped-to batches are the same, augmentation included
    gen = torch.Generator().manual_seed(11)
    loader = augmented_loader(data.x_train, data.y_train, 8, shuffle_generator=gen,
                              augment="crop-flip", input_shape=(3, 6, 6))
    state = loader.sampler.state_dict()
    first = [(x.clone(), y.clone()) for x, y in loader]
    loader.sampler.resume(state, 1)
    again = [(x, y) for x, y in loader]
    assert len(again) == 2
    for (xa, ya), (xb, yb) in zip(again, first[1:], strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_load_dataset_records_the_augmentation():
    from compactnn.data import load_dataset

    data = load_dataset("digits", augment="crop-flip", limit_train=50)
    assert data.augment == "crop-flip"
    assert isinstance(in_memory_loaders(data, 16, 64, seed=0)["train"].sampler,
                      AugmentedBatches)
    with pytest.raises(ValueError, match="unknown augmentation"):
        load_dataset("digits", augment="cutout")
