"""Where the nets compute, in which memory layout, and in which precision.

Taught in the appendix :doc:`../notebooks/appendix_engineering` ("Speed on a CPU");
every chapter meets :func:`pick_device` in its parameter cell. One policy for training
(:func:`~siamese_lib.train.fit`), evaluation (:func:`~siamese_lib.evaluate.embed_images`)
and the benchmarks:

- the device: the one asked for, else CUDA, else Apple MPS, else the CPU;
- the layout: channels-last on a CPU (``SIAMESE_LIB_CHANNELS_LAST`` overrides);
- the precision: bfloat16 on a CPU that computes it natively, else float32
  (``SIAMESE_LIB_BF16`` overrides). Distances and losses always stay in float32.

``python -m benchmarks.speed --sections defaults`` measures these choices on your machine;
the measurements that set them are in ``benchmarks/defaults.py``.
"""

from __future__ import annotations

import functools
import os

import torch

#: Set to ``0`` or ``1`` to store conv inputs and weights channels-last or not (CPU only).
CHANNELS_LAST_ENV = "SIAMESE_LIB_CHANNELS_LAST"
#: Set to ``0`` or ``1`` to run the nets in float32 or bfloat16 (CPU only).
BF16_ENV = "SIAMESE_LIB_BF16"


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to compute on: the one asked for, else CUDA, else Apple MPS, else CPU.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, a :class:`torch.device`,
            or None to choose.

    Raises:
        ValueError: ``device`` names no device type torch knows, or a CUDA or MPS
            device this machine does not have (a GPU asked for on a CPU-only machine
            would otherwise fail only at the first tensor moved there).
        TypeError: ``device`` is neither a string, a :class:`torch.device` nor None.
    """
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', a torch.device "
                        f"or None, got {type(device).__name__} {device!r}")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {str(device)!r}; use cpu, cuda, cuda:N or mps, or "
                         "leave the device unset to choose") from None
    _check_available(chosen)
    return chosen


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def _check_available(device: torch.device) -> None:
    """Raise ValueError if ``device`` is a CUDA or MPS device this machine lacks."""
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} asked for, but CUDA is not available on "
                             "this machine; use cpu, or leave the device unset to choose")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {str(device)!r} asked for, but this machine has "
                             f"{count} CUDA device(s): cuda:0 to cuda:{count - 1}")
    if device.type == "mps" and not _mps_available():
        raise ValueError(f"device {str(device)!r} asked for, but Apple MPS is not available "
                         "on this machine; use cpu, or leave the device unset to choose")


def _switch(name: str) -> bool | None:
    """An on/off environment switch: True for ``1``, False for ``0``, None when unset."""
    value = os.environ.get(name)
    if value is None:
        return None
    if value not in ("0", "1"):
        raise ValueError(f"{name}={value!r}: set it to 0 (off) or 1 (on), or unset it for "
                         "the library's default")
    return value == "1"


def use_channels_last(device: str | torch.device) -> bool:
    """Whether to store conv inputs and weights channels-last: by default on a CPU.

    ``SIAMESE_LIB_CHANNELS_LAST=0`` or ``1`` overrides the default.

    Raises:
        ValueError: the variable is set to something other than 0 or 1.
    """
    forced = _switch(CHANNELS_LAST_ENV)
    return torch.device(device).type == "cpu" if forced is None else forced


def memory_format(device: str | torch.device) -> torch.memory_format:
    """The memory format :func:`use_channels_last` chooses for ``device``."""
    return torch.channels_last if use_channels_last(device) else torch.contiguous_format


def autocast_dtype(device: str | torch.device) -> torch.dtype | None:
    """The reduced precision to run the nets in, or None for float32.

    bfloat16 on a CPU that computes it natively (:func:`cpu_has_native_bf16`); elsewhere
    float32: without those instructions bfloat16 convolutions are emulated and slower,
    and on GPUs the choice was never measured. ``SIAMESE_LIB_BF16=0`` or ``1`` overrides
    the default (CPU only).

    Raises:
        ValueError: the variable is set to something other than 0 or 1.
    """
    if torch.device(device).type != "cpu":
        return None
    forced = _switch(BF16_ENV)
    on = cpu_has_native_bf16() if forced is None else forced
    return torch.bfloat16 if on else None


#: The probes in ``torch.cpu`` for the units that compute bfloat16 natively, by name.
_BF16_UNITS = (("AMX", "_is_amx_tile_supported"), ("AVX512-BF16", "_is_avx512_bf16_supported"))


@functools.cache
def cpu_bf16_units() -> tuple[str, ...]:
    """The names of this CPU's units that compute bfloat16 natively: ``"AMX"`` (tiles,
    Intel Sapphire Rapids and later) and ``"AVX512-BF16"`` (AMD Zen 4 and later, Intel
    Cooper Lake); empty when it has neither.

    Asked once per process: :func:`autocast` runs on every training step and embedded batch.
    """
    return tuple(name for name, probe in _BF16_UNITS
                 if bool(getattr(torch.cpu, probe, lambda: False)()))


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (:func:`cpu_bf16_units` names a unit)."""
    return bool(cpu_bf16_units())


def autocast(device: str | torch.device) -> torch.autocast:
    """A context that runs the nets in :func:`autocast_dtype` (a no-op for float32)."""
    dtype = autocast_dtype(device)
    return torch.autocast(torch.device(device).type, dtype=dtype or torch.float32,
                          enabled=dtype is not None)
