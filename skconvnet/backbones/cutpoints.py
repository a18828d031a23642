"""Where a network can be cut: the cut points and the spec that lists them."""

from dataclasses import dataclass


@dataclass(frozen=True)
class CutPoint:
    """A point where the network can be cut, and a cached activation resumed from.

    ``where`` finds it in the Keras model: the layer of that name, ``"after:<layer>"`` (the
    one operation that takes that layer's output, where Keras names the operation after a
    counter that changes from model to model), ``"output"`` (the model's last operation),
    ``"op:<position>"`` (the operation at that position, from the end where negative, of a
    chain of blocks) or
    ``"last:<prefix>"`` (the last operation named ``<prefix>`` and a letter: a stage's last
    block, whichever layers its blocks are made of).
    """

    name: str
    stage: str  # fine-tuning unfreezes, by default, the whole stage that the cut ends in
    channels: int
    reduction: int  # input height / activation height, where it divides
    where: str = ""

    @property
    def locator(self):
        return self.where or self.name


@dataclass(frozen=True)
class Backbone:
    """A ``keras.applications`` convolutional base (``include_top=False``)."""

    name: str  # the lowercase name of the keras.applications constructor
    constructor: str  # keras.applications.<constructor>
    module: str  # keras.applications.<module>.preprocess_input
    image_size: tuple  # the customary (height, width)
    cut_points: tuple
    title: str  # as people write it

    # A convnet's token layout and pooling; a transformer's spec has its own.
    transformer = False
    prefix_tokens = 0  # class and register tokens before the patch tokens
    pooling = None  # what pooling="auto" means
    poolings = (None, "avg", "max")  # the pooling values it takes

    @property
    def layer_names(self):
        return tuple(cut.name for cut in self.cut_points)

    def cut(self, name):
        return self.cut_points[self.layer_names.index(name)]

    def depth(self, name):
        """1 for the shallowest cut point, up to ``len(cut_points)``."""
        return self.layer_names.index(name) + 1

    def default_unfreeze_from(self, layer):
        """The first cut point of ``layer``'s stage: fine-tuning trains that whole stage."""
        stage = self.cut(layer).stage
        return next(cut.name for cut in self.cut_points if cut.stage == stage)

    def default_search(self):
        """The last cut point of each of the three deepest stages, for a quick layer search."""
        last = {}
        for cut in self.cut_points:
            last[cut.stage] = cut.name
        return list(last.values())[-3:]
