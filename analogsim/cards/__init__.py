"""Device cards: TOML files loaded into a validated, frozen :class:`Chip`.

The first stage of the DESIGN data flow: a card (``devices/*.toml`` or a user's file) becomes a
:class:`Chip`, which the tiles turn into physics. A card is data, never code.

- :mod:`.fields`: the field metadata (description, unit, allowed range) every section carries;
- :mod:`.sections` and :mod:`.laws`: the section dataclasses, which are the schema;
- :mod:`.validation`: checking one section's keys, types and ranges;
- :mod:`.chip`: :class:`Chip`, to and from TOML, overrides;
- :mod:`.loading`: :func:`load_chip` and :func:`list_chips` for shipped cards and paths;
- :mod:`.reference`: writes the card reference ``docs/cards.md`` from the metadata.
"""

from analogsim.cards.chip import CARD_FORMAT_VERSION as CARD_FORMAT_VERSION
from analogsim.cards.chip import Chip as Chip
from analogsim.cards.chip import apply_overrides as apply_overrides
from analogsim.cards.chip import chip_from_dict as chip_from_dict
from analogsim.cards.chip import chip_from_toml as chip_from_toml
from analogsim.cards.chip import chip_to_dict as chip_to_dict
from analogsim.cards.laws import Drift as Drift
from analogsim.cards.laws import GaussianProgrammingNoise as GaussianProgrammingNoise
from analogsim.cards.laws import NoDrift as NoDrift
from analogsim.cards.laws import NoProgrammingNoise as NoProgrammingNoise
from analogsim.cards.laws import NoReadNoise as NoReadNoise
from analogsim.cards.laws import PcmOneOverFReadNoise as PcmOneOverFReadNoise
from analogsim.cards.laws import PcmPowerLawDrift as PcmPowerLawDrift
from analogsim.cards.laws import PolynomialProgrammingNoise as PolynomialProgrammingNoise
from analogsim.cards.laws import ProgrammingNoise as ProgrammingNoise
from analogsim.cards.laws import ReadNoise as ReadNoise
from analogsim.cards.laws import RramRelaxation as RramRelaxation
from analogsim.cards.loading import describe_fields as describe_fields
from analogsim.cards.loading import list_chips as list_chips
from analogsim.cards.loading import load_chip as load_chip
from analogsim.cards.sections import Adc as Adc
from analogsim.cards.sections import CardInfo as CardInfo
from analogsim.cards.sections import Coding as Coding
from analogsim.cards.sections import Conductance as Conductance
from analogsim.cards.sections import Cost as Cost
from analogsim.cards.sections import Dac as Dac
from analogsim.cards.sections import DriftCompensation as DriftCompensation
from analogsim.cards.sections import Faults as Faults
from analogsim.cards.sections import OutputNoise as OutputNoise
from analogsim.cards.sections import PerReadNoise as PerReadNoise
from analogsim.cards.sections import Slicing as Slicing
from analogsim.cards.sections import TileMapping as TileMapping
from analogsim.cards.sections import Wires as Wires
