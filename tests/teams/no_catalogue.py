"""teamnet 2.0.0's own recipe without its catalogue: what the matrix sees when a team forgot its units."""

from teamnet.goldens import Recipe


class WithoutCatalogue(Recipe):
    catalogue = None


RECIPE = WithoutCatalogue()
