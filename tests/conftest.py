import math

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module of tiny tensors: they gain nothing from more, and on
    a busy 2-core machine the synchronisation costs more than the work (a conv test file:
    ~5 s vs > 60 s). Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def fft_flops():
    """``FlopCounterMode(custom_mapping=...)`` formulas for real FFTs over any axes with the
    library's convention (``rfft_macs`` of the transformed size per transform), in flops — 2
    per multiply-add, as FlopCounterMode counts convolutions."""
    from compactnn.functional import conv_circulant as CF

    aten = torch.ops.aten

    def r2c(x_shape, dim, *args, out_shape=None, **kwargs):
        n = math.prod(x_shape[d] for d in dim)
        return 2 * math.prod(x_shape) // n * CF.rfft_macs(n)

    def c2r(x_shape, dim, normalization, last_dim_size, *args, out_shape=None, **kwargs):
        n = math.prod(x_shape[d] for d in dim[:-1]) * last_dim_size
        return 2 * math.prod(x_shape) // math.prod(x_shape[d] for d in dim) * CF.rfft_macs(n)

    return {aten._fft_r2c: r2c, aten._fft_c2r: c2r}
