"""Real hardware in the loop: device cards fitted to measurements, chips that are real arrays.

- :mod:`.measurements` — the measurement-file layout (CSV or HDF5) and reading it;
  :mod:`.measurement_writer` writes it, :mod:`.simulated_measurements` draws it from a card.
- :mod:`.device_fit` — :func:`fit_device`: programming noise, drift, read noise, stuck devices
  and distinguishable levels fitted to a file, into a card (:class:`DeviceFit`); the fits of
  each law are in :mod:`.fit_programming`, :mod:`.fit_read_noise` and :mod:`.fit_drift`, on
  the reads arranged by :mod:`.fit_reads`, and what they return is in :mod:`.fit_results`.
- :mod:`.fit_report` — :func:`write_fit_report`: data, fits and residuals as PNGs and a page.
- :mod:`.chip_exchange` — the chip interface, the simulated chip, and the target and
  read-back files a lab exchanges with analogsim (:func:`export_targets`,
  :func:`evaluate_readback`).
- :mod:`.model_file` — model files: weights, architecture, card and data set in one file.
"""

from analogsim.hardware.chip_exchange import ChipInterface as ChipInterface
from analogsim.hardware.chip_exchange import SimulatedChip as SimulatedChip
from analogsim.hardware.chip_exchange import evaluate_readback as evaluate_readback
from analogsim.hardware.chip_exchange import export_targets as export_targets
from analogsim.hardware.chip_exchange import simulate_readback as simulate_readback
from analogsim.hardware.device_fit import fit_device as fit_device
from analogsim.hardware.fit_report import write_fit_report as write_fit_report
from analogsim.hardware.fit_results import DeviceFit as DeviceFit
from analogsim.hardware.measurement_writer import write_measurements as write_measurements
from analogsim.hardware.measurements import Measurements as Measurements
from analogsim.hardware.measurements import load_measurements as load_measurements
from analogsim.hardware.model_file import load_model_file as load_model_file
from analogsim.hardware.model_file import save_model_file as save_model_file
from analogsim.hardware.simulated_measurements import (
    simulate_measurements as simulate_measurements,
)
