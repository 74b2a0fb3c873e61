"""`build_model`: an `Arch` becomes a plain PyTorch module."""

from __future__ import annotations

from torch import nn

from edgenas.nn.blocks import ClassifierHead, UnitBlock
from edgenas.space.arch import Arch, validate
from edgenas.space.plan import classifier, sites


class Network(nn.Module):
    """Units in order (stem, stages, head convolution), then the classifier.

    ``units`` is a flat `nn.Sequential`, so ``network.units[i]`` is ``plan.sites(arch)[i]``.
    """

    def __init__(self, arch: Arch) -> None:
        super().__init__()
        self.units = nn.Sequential(*(UnitBlock(site.unit) for site in sites(arch)))
        self.classifier = ClassifierHead(classifier(arch))
        _init_weights(self)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.classifier(self.units(x))


def _init_weights(model: nn.Module) -> None:
    """torchvision's MobileNet/ResNet initialisation: He for convs, small normal for linear."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)


def build_model(arch: Arch) -> Network:
    """A freshly initialised `torch.nn.Module` for ``arch`` (validated first)."""
    validate(arch)
    return Network(arch)
