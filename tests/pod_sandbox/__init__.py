"""A pod sandbox: the LiteLLM container run from the rendered manifests as the image and kubelet run it."""

from tests.pod_sandbox.image import IMAGE, VENV, Image
from tests.pod_sandbox.sandbox import Container, Run, Sandbox, Write, config_maps, pod_spec

__all__ = ["IMAGE", "VENV", "Container", "Image", "Run", "Sandbox", "Write", "config_maps", "pod_spec"]
