"""PyTorch checkpoints for the Rust reader of crates/formats/src/torch.rs, with the values it must read.

  .venv-ref/bin/python scripts/torch_fixtures.py [OUT_DIR]   (default crates/formats/tests/fixtures/torch)

Every NAME.pth is written beside NAME.safetensors: the floating-point tensors the reader must return
(names as the state dict has them, each as contiguous f32; integer and bool tensors left out, as
the reader skips them). The files are tiny (a few KB each) and deterministic in their values; the
zip files also carry torch's own record names and version, so they are not byte-for-byte stable
across torch versions, which does not matter to the tests.

  tiny.pth              a conv + batch norm + linear state dict, torch.save's zip format
  tiny_legacy.pth       the same, _use_new_zipfile_serialization=False (the format of PyTorch < 1.6
                        and of torchvision's own vgg16-397923af.pth)
  checkpoint.pth        {"state_dict": <tiny>, "epoch": 3, "arch": "tiny", "best": 0.5}
  model_key.pth         {"model": <tiny>, "optimizer": {...}} (legacy format)
  dtypes.pth            float16, bfloat16, float64, a 0-d scalar, an empty tensor, int32/int64/bool
  dtypes_legacy.pth     the same, legacy format
  strided.pth           views saved as they are: a transpose, a permutation, an offset slice, a
                        column slice (stride != contiguous), and two tensors sharing one storage
  strided_legacy.pth    the same, legacy format
  module.pth            an OrderedDict with `module.` prefixes (DataParallel's), an nn.Parameter
                        (_rebuild_parameter) and a tensor carrying a Python attribute
                        (_rebuild_from_type_v2)
"""
import os
import sys
from collections import OrderedDict

import torch
import torch.nn as nn
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "crates", "formats", "tests", "fixtures", "torch"))


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 5)


def tiny_state_dict():
    torch.manual_seed(0)
    model = Tiny()
    with torch.no_grad():
        model.bn.weight.uniform_(0.5, 1.5)
        model.bn.bias.normal_()
        model.bn.running_mean.normal_()
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.num_batches_tracked.fill_(7)
    return model.state_dict()


def expected(tensors):
    """The floating-point tensors as the reader must return them: contiguous f32, no sharing."""
    return {k: v.detach().float().contiguous().clone() for k, v in tensors.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point()}


def write(out, name, obj, state_dict, legacy=False):
    path = os.path.join(out, name + ".pth")
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    save_file(expected(state_dict), os.path.join(out, name + ".safetensors"))
    print(f"{path}: {os.path.getsize(path)} bytes")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    os.makedirs(out, exist_ok=True)

    sd = tiny_state_dict()
    write(out, "tiny", sd, sd)
    write(out, "tiny_legacy", sd, sd, legacy=True)
    write(out, "checkpoint", {"state_dict": sd, "epoch": 3, "arch": "tiny", "best": 0.5}, sd)
    optimizer = {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0, 1, 2]}]}
    write(out, "model_key", {"model": sd, "optimizer": optimizer}, sd, legacy=True)

    torch.manual_seed(1)
    dtypes = {
        "half": torch.randn(3, 4).half(),
        "bf16": torch.randn(5).bfloat16(),
        "double": torch.randn(2, 3, dtype=torch.float64),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        "ints": torch.arange(6, dtype=torch.int32).reshape(2, 3),
        "longs": torch.arange(4),
        "mask": torch.tensor([True, False, True]),
    }
    write(out, "dtypes", dtypes, dtypes)
    write(out, "dtypes_legacy", dtypes, dtypes, legacy=True)

    torch.manual_seed(2)
    base = torch.randn(4, 6)
    cube = torch.randn(2, 3, 4)
    strided = {
        "transposed": base.t(),                 # (6, 4), stride (1, 6)
        "base": base,                           # shares the transposed one's storage
        "permuted": cube.permute(2, 0, 1),      # (4, 2, 3), stride (1, 12, 4)
        "rows": base[1:3],                      # storage offset 6, contiguous
        "columns": base[:, 2:5],                # (4, 3), stride (6, 1), offset 2
        "half_t": torch.randn(3, 5).half().t(), # a transposed float16
    }
    for k, v in strided.items():
        if k not in ("base", "rows"):
            assert not v.is_contiguous(), k
    write(out, "strided", strided, strided)
    write(out, "strided_legacy", strided, strided, legacy=True)

    module = OrderedDict(("module." + k, v) for k, v in sd.items())
    torch.manual_seed(3)
    module["module.param"] = nn.Parameter(torch.randn(2, 2))
    tagged = torch.randn(3)
    tagged.note = "a tensor with a Python attribute"
    module["module.tagged"] = tagged
    write(out, "module", module, module)


if __name__ == "__main__":
    main()
