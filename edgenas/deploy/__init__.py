"""Push a bundle to a device, build there, benchmark, compare with the prediction."""

from edgenas.deploy.deploy import deploy

__all__ = ["deploy"]
