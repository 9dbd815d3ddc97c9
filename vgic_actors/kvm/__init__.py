"""The kernel model: what KVM/arm64 does with the vGIC, under the kernel's names.

Lock order (vgic.c header, kernel-vgic.md 1.4), highest first:
kvm->lock > vcpu->mutex > kvm->arch.config_lock > its->cmd_lock > its->its_lock
> lpi_xa.xa_lock > vgic_cpu->ap_list_lock (IRQs off) > vgic_irq->irq_lock (IRQs off).
Two ap_list_locks: lower vcpu_id first. To take a higher lock while holding a
lower one, drop and re-take both (hence the retry loops).

Versions of the kernel are variants (``variants.py``): switches read at the
exact places versions differ, never copied functions.
"""
