"""vgic-actors: an executable, concurrent model of the Linux KVM/arm64 virtual GIC.

Layers (imports go one way, each uses only those listed before it):
arch (the GIC virtual CPU interface, pure) -> runtime (controlled scheduler on
Trio) -> kvm (the kernel model) -> guest -> checks -> tools (scenario, soak,
logs, cli). See docs/ARCHITECTURE.md.
"""

__version__ = "0.1.0"
