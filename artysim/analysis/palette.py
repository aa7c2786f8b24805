"""One colour-blind-safe palette for every figure (Okabe & Ito, "Color Universal Design", 2008).

The eight colours stay distinguishable under the common forms of colour blindness (protanopia,
deuteranopia, tritanopia) and in greyscale print as far as eight colours can. Figures use them by
meaning, and one figure never gives one colour two meanings: where colour names a source or a file,
other distinctions (effective / duds, fired / effective) are drawn with hatching, line style or grey.
"""

from __future__ import annotations

BLACK = "#000000"
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
GREY = "#7f7f7f"
LIGHT_GREY = "#c8c8c8"

#: colours for categories (sources, files, curves) in order: the most distinct first
CYCLE = (BLUE, ORANGE, GREEN, VERMILLION, SKY, PURPLE, YELLOW, BLACK)

#: the two roles most figures need
A, B = BLUE, ORANGE
#: sequential blues for nested quantile bands (light = wide band)
BANDS = ("#c6dbef", "#6baed6", "#2171b5")
DARK_BLUE = "#08306b"
#: colour map of heat maps: perceptually uniform and colour-blind safe
CMAP = "cividis"


def category(i: int) -> str:
    """The colour of the i-th category (sources, variants, files)."""
    return CYCLE[i % len(CYCLE)]
