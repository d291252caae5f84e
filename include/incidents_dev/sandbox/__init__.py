"""The sandbox: a deterministic Kirov-region social-media stream with ground truth, and a local
HTTP server that serves it through the five networks' API shapes with rate limits and faults.

``generate``/``ground_truth`` (``incidents_dev.sandbox.generator``) need no server;
``SandboxServer`` (``incidents_dev.sandbox.server``) is imported lazily to keep imports light.
"""

from incidents_dev.sandbox.faults import FaultConfig, RateLimit
from incidents_dev.sandbox.generator import GeneratorConfig, SandboxItem, external_id, generate, ground_truth

__all__ = [
    "FaultConfig",
    "GeneratorConfig",
    "RateLimit",
    "SandboxItem",
    "SandboxServer",
    "external_id",
    "generate",
    "ground_truth",
]


def __getattr__(name: str) -> object:
    if name == "SandboxServer":
        from incidents_dev.sandbox.server import SandboxServer

        return SandboxServer
    raise AttributeError(name)
