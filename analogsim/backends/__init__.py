"""Backends other than the native tile. Each is optional and imported only when asked for.

- :mod:`.aihwkit_backend` — IBM aihwkit's inference tiles (``convert(..., backend="aihwkit")``),
  the only module of analogsim that imports aihwkit.
- :mod:`.aihwkit_training` — on-chip training with aihwkit's pulsed devices (ReRamSB and
  the other training presets) and AnalogSGD.
- :mod:`.base` — what a backend model provides so that ``program``, ``drift`` and ``evaluate``
  work on it unchanged.
"""
