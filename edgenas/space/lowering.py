"""What each named nonlinearity becomes in torch and in ONNX: the one table both read.

The plan (`edgenas.space.plan`) names activations by string; the torch blocks, the elastic
supernet and the ONNX emitter all turn those names into operations. Keeping both forms on
one row means a trained module and the graph its latency is measured on cannot disagree
about what ``"swish"`` is. Nothing here imports torch or onnx: the forms are names, resolved
by the code that has those libraries.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgenas.space.arch import ACTIVATIONS


@dataclass(frozen=True)
class Nonlinearity:
    """One elementwise function in both target forms.

    ``torch_module`` is a class in ``torch.nn``. The ONNX form is ``onnx_op`` applied to the
    input, with ``onnx_bounds`` as extra constant inputs (Clip's min and max); when
    ``onnx_times_input`` the result is then multiplied by the input (swish = x * sigmoid(x),
    which opset 17 has no single op for).
    """

    torch_module: str
    onnx_op: str
    onnx_bounds: tuple[float, ...] = ()
    onnx_times_input: bool = False
    torch_inplace: bool = True  # False where the torch class takes no ``inplace``


ACTIVATION_FORMS: dict[str, Nonlinearity] = {
    "relu": Nonlinearity("ReLU", "Relu"),
    "relu6": Nonlinearity("ReLU6", "Clip", onnx_bounds=(0.0, 6.0)),
    "hswish": Nonlinearity("Hardswish", "HardSwish"),
    "swish": Nonlinearity("SiLU", "Sigmoid", onnx_times_input=True),
}

# gates are not offered to the search (not in ACTIVATIONS); squeeze-excitation uses one
GATE_FORMS: dict[str, Nonlinearity] = {
    "sigmoid": Nonlinearity("Sigmoid", "Sigmoid", torch_inplace=False),
}

if set(ACTIVATION_FORMS) != set(ACTIVATIONS):  # a name the search can pick must be buildable
    raise RuntimeError(f"ACTIVATION_FORMS covers {tuple(ACTIVATION_FORMS)}, "
                       f"edgenas.space.arch.ACTIVATIONS is {ACTIVATIONS}")


def nonlinearity(name: str) -> Nonlinearity:
    """The forms of an activation (`ACTIVATIONS`) or gate name; ValueError names the choices."""
    form = ACTIVATION_FORMS.get(name) or GATE_FORMS.get(name)
    if form is None:
        raise ValueError(f"unknown activation {name!r}; expected one of "
                         f"{(*ACTIVATION_FORMS, *GATE_FORMS)}")
    return form
