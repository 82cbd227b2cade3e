"""A frozen network run in half precision as a drop-in for its fp32 self (``sdakd.teacher_dtype``): used by the
training loop's frozen teacher and by the teacher-cache build, so both see the same teacher."""
import torch
from torch import nn

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def run_in_dtype(net: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Cast ``net`` to ``dtype`` and make it a drop-in for an fp32 network: floating inputs are cast on the way
    in, floating outputs (tensors or tuples/lists of them) back to fp32 on the way out. For frozen networks."""
    net.to(dtype)

    def cast(v):
        return v.to(dtype) if torch.is_tensor(v) and v.is_floating_point() else v

    def cast_in(_module, args, kwargs):
        return tuple(cast(a) for a in args), {k: ([cast(x) for x in v] if isinstance(v, list) else cast(v))
                                              for k, v in kwargs.items()}

    def cast_out(_module, _args, output):
        if torch.is_tensor(output):
            return output.float()
        if isinstance(output, (tuple, list)):
            return type(output)(o.float() if torch.is_tensor(o) and o.is_floating_point() else o for o in output)
        return output

    net.register_forward_pre_hook(cast_in, with_kwargs=True)
    net.register_forward_hook(cast_out)
    return net
