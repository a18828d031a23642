"""A fit's random streams: one seed sequence per random part of the fit, spawned from one.

NumPy's :class:`~numpy.random.SeedSequence` makes children that are independent by
construction, where offsets of one number (``seed + 1``, ``seed + 200``) would make two
fits' streams overlap: one fit's dropout seed is another's kernel seed.
"""

import numpy as np
from sklearn.utils import check_random_state

#: The random parts of a fit, each its own child sequence.
STREAMS = ("augmentation", "kernels", "dropout", "probe", "split", "shuffle")


class Seeds:
    """The seeds of one fit, spawned from ``random_state`` (an int, a ``RandomState`` or
    None, as scikit-learn takes it): the same ``random_state`` gives the same seeds."""

    def __init__(self, random_state):
        entropy = check_random_state(random_state).randint(2**31)
        children = np.random.SeedSequence(entropy).spawn(len(STREAMS))
        self._sequences = dict(zip(STREAMS, children))

    def ints(self, stream, n):
        """``n`` seeds of ``stream``, non-negative 31-bit ints as Keras and scikit-learn
        take them."""
        return [int(word >> 1) for word in self._sequences[stream].generate_state(n)]

    def one(self, stream):
        """One seed of ``stream``."""
        return self.ints(stream, 1)[0]

    def shuffling(self, phase):
        """The seed sequence that shuffles ``phase`` (a :class:`~.plan.Phase`): a child of
        the ``"shuffle"`` stream per phase."""
        parent = self._sequences["shuffle"]
        return np.random.SeedSequence(parent.entropy,
                                      spawn_key=(*parent.spawn_key, phase.stream))
