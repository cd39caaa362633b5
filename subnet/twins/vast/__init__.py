"""A Vast.ai twin on loopback (vast-python 1.9.1's protocol) whose instances run their images for real."""

from subnet.twins.vast.offers import TwinOffer, vast_offer
from subnet.twins.vast.state import Created
from subnet.twins.vast.twin import VastTwin

__all__ = ["Created", "TwinOffer", "VastTwin", "vast_offer"]
