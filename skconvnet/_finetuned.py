"""What the fine-tuned estimators share: the book's two phases, whatever the target.

:class:`FineTunedConvNet` fits a new head on the frozen base (a linear probe by default),
then fine-tunes the top of the base with it; the classifier and the regressor each say how
their ``y`` is checked and learnt (:mod:`skconvnet.training.targets`) and what they predict.
"""

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import EfficiencyWarning
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from ._fitting import unfitted_on_failure, warn_at_caller
from ._optional import require_keras
from ._persistence import Persistent
from ._sklearn import _check_sample_weight, _fit_context
from .backbones import specs
from .backbones.checks import check_layer, check_pooling, check_unfreeze_from, output_shape
from .backbones.weights import resolve_weights, spec_for
from .compute.activations import run_model
from .export.converters import OnnxOperator
from .inputs.adapters import ImageInput
from .training.frozen import run_frozen
from .training.plan import TrainingParameters, plan_training
from .training.probe import fit_probe
from .training.seeds import Seeds
from .training.storage import Storage, free_bytes, memory_budget, temp_folder


class FineTunedConvNet(Persistent, ImageInput, OnnxOperator, BaseEstimator):
    """Base of :class:`FineTunedConvNetClassifier` and :class:`FineTunedConvNetRegressor`.

    Subclasses provide ``_check_y(y)``, ``y`` checked as an array;
    ``_targets(y, sample_weight, columns)``, the
    :class:`~skconvnet.training.targets.Targets` the network learns from it (``columns``:
    those of a DataFrame ``y``, else None); and ``_fitted(targets, model)``, which sets the
    fitted attributes from the trained network.
    """

    _per_sample = "target"  # what y holds for each sample, in messages
    _keras_models = ("model_",)
    _added_parameters = {"temp_folder": None}  # where fit stores; nothing a fitted model uses

    # no defaults: each estimator's own signature holds them, where scikit-learn reads them
    def __init__(
        self,
        *,
        backbone,
        layer,
        weights,
        image_size,
        head_epochs,
        fine_tune_epochs,
        unfreeze_from,
        augmentation,
        augmented_views,
        batch_size,
        random_state,
        precision,
        verbose,
        pooling,
        hidden_layer_sizes,
        dropout,
        head_learning_rate,
        fine_tune_learning_rate,
        optimizer,
        early_stopping,
        validation_fraction,
        n_iter_no_change,
        max_stored_bytes,
        temp_folder,
        image_shape,
    ):
        self.backbone = backbone
        self.layer = layer
        self.weights = weights
        self.image_size = image_size
        self.head_epochs = head_epochs
        self.fine_tune_epochs = fine_tune_epochs
        self.unfreeze_from = unfreeze_from
        self.augmentation = augmentation
        self.augmented_views = augmented_views
        self.batch_size = batch_size
        self.random_state = random_state
        self.precision = precision
        self.verbose = verbose
        self.pooling = pooling
        self.hidden_layer_sizes = hidden_layer_sizes
        self.dropout = dropout
        self.head_learning_rate = head_learning_rate
        self.fine_tune_learning_rate = fine_tune_learning_rate
        self.optimizer = optimizer
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.max_stored_bytes = max_stored_bytes
        self.temp_folder = temp_folder
        self.image_shape = image_shape

    @_fit_context(prefer_skip_nested_validation=True)
    @unfitted_on_failure
    def fit(self, X, y, sample_weight=None):
        """Train the head on the frozen base, then fine-tune the top of the base with it.

        Parameters
        ----------
        X : array-like of shape (n_images, height, width, channels) or (n_samples, n_columns), \
                or list of paths
            Training images (see Notes).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets (see the estimator's description).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the training loss.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        # The Keras side of training is imported here: ``import skconvnet`` stays light.
        require_keras(f"{type(self).__name__}.fit")
        from .training.network import build_network, inference_copy, unfreeze

        parameters = self._check_parameters()
        weights = resolve_weights(self._spec(), self.weights)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        columns = getattr(y, "columns", None)
        y = self._check_y(y)
        source = self._images(X, reset=True)
        if source.n_samples != len(y):
            raise ValueError(
                f"X has {source.n_samples} samples but y has {len(y)} "
                f"{self._per_sample}s; give one {self._per_sample} per sample."
            )
        targets = self._targets(y, sample_weight, columns)
        seeds = Seeds(self.random_state)
        plan = plan_training(
            self._spec(), parameters, n_images=source.n_samples,
            memory_bytes=memory_budget(self.max_stored_bytes),
            disk_bytes=free_bytes(parameters.temp_folder),
        )
        if plan.notice is not None:
            warn_at_caller(plan.notice, EfficiencyWarning)
        network = build_network(weights, parameters, targets=targets, seeds=seeds)
        history = {}
        with Storage(parameters.temp_folder) as storage:
            stored = run_frozen(plan, source, weights, storage,
                                augmentation=network.augmentation, verbose=self.verbose)
            if plan.probe:
                history["head"] = self._fit_probe(plan, network, stored, targets, seeds)
            elif plan.head is not None:
                history["head"] = self._fit_phase(plan.head, plan, network, stored, source,
                                                  targets, seeds)
            if plan.fine_tune is not None:
                unfreeze(network.base, self._spec(), parameters.unfreeze_from)
                history["fine_tune"] = self._fit_phase(plan.fine_tune, plan, network, stored,
                                                       source, targets, seeds)
        self.history_ = history
        self._fitted(targets, inference_copy(network.model))
        return self

    def __sklearn_is_fitted__(self):
        return hasattr(self, "model_")

    def _outputs(self, X):
        """The network's outputs for ``X``, float64 ``(n_samples, n_outputs)``."""
        check_is_fitted(self)
        source = self._images(X, reset=False)
        return run_model(self.model_, self._spec(), source,
                         batch_size=self.batch_size).astype(np.float64)

    def _spec(self):
        return spec_for(specs.get(self.backbone), self.weights)

    # Checks

    def _check_parameters(self):
        """The :class:`~skconvnet.training.plan.TrainingParameters`, checked before any data
        is read."""
        spec = self._spec()
        layer, unfreeze_from = self._check_layers(spec)
        image_size = self._image_size()
        output_shape(spec, layer, image_size)
        if self.head_epochs == 0 and self.fine_tune_epochs == 0:
            raise ValueError(
                "head_epochs and fine_tune_epochs are both 0: nothing would be trained. Set "
                "head_epochs >= 1 or 'auto' (and fine_tune_epochs >= 0)."
            )
        augmentation = self.augmentation
        return TrainingParameters(
            layer=layer, unfreeze_from=unfreeze_from, image_size=tuple(image_size),
            pooling=check_pooling(spec, self.pooling),
            hidden_layer_sizes=self._hidden_layer_sizes(),
            dropout=self.dropout, head_epochs=self.head_epochs,
            fine_tune_epochs=self.fine_tune_epochs,
            augmentation=(tuple(augmentation) if isinstance(augmentation, (list, tuple))
                          else bool(augmentation)),
            augmented_views=self.augmented_views, precision=self.precision,
            optimizer=self.optimizer, head_learning_rate=self.head_learning_rate,
            fine_tune_learning_rate=self.fine_tune_learning_rate,
            early_stopping=bool(self.early_stopping),
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change, batch_size=self.batch_size,
            temp_folder=temp_folder(self.temp_folder),
        )

    def _check_layers(self, spec):
        """``(layer, unfreeze_from)``, by default the deepest cut and the stage it ends."""
        layer = spec.layer_names[-1] if self.layer is None else self.layer
        layer = check_layer(spec, layer)
        if self.unfreeze_from is None:
            return layer, spec.default_unfreeze_from(layer)
        return layer, check_unfreeze_from(spec, self.unfreeze_from, layer)

    def _hidden_layer_sizes(self):
        sizes = np.atleast_1d(self.hidden_layer_sizes)
        if sizes.ndim != 1 or not all(isinstance(s, Integral) and s > 0 for s in sizes.tolist()):
            raise ValueError(
                "hidden_layer_sizes must be positive integers, e.g. (256,), got "
                f"{self.hidden_layer_sizes!r}."
            )
        return tuple(int(s) for s in sizes)

    def _sample_weight(self, sample_weight, n_samples):
        """``sample_weight`` checked, float32 (ones where None)."""
        return _check_sample_weight(sample_weight, np.empty((n_samples, 0)), dtype=np.float32,
                                    ensure_non_negative=True)

    # The phases of fit

    def _fit_probe(self, plan, network, stored, targets, seeds):
        """The head as a linear model of the stored features, folded into it."""
        features = stored.features.read(np.arange(stored.features.n_rows))
        kernel, bias, history = fit_probe(
            features.reshape(len(targets.values), plan.n_views, -1), targets,
            seeds.one("probe"),
        )
        network.head.get_layer("probability").set_weights([kernel, bias])
        return history

    def _fit_phase(self, phase, plan, network, stored, source, targets, seeds):
        """Train what ``phase`` trains for its epochs, on its inputs; Keras' per-epoch
        history."""
        from .training.network import Batches, compile_for, early_stopping, phase_inputs

        parameters = plan.parameters
        model, load, n_views = phase_inputs(phase, plan, network, stored, source,
                                            self._spec())
        values = targets.for_loss()
        train_rows, validation_rows = self._split(parameters, targets, seeds.one("split"),
                                                  phase.early_stopping)
        train = Batches(load, train_rows, values, targets.sample_weight, parameters.batch_size,
                        shuffle_seed=seeds.shuffling(phase), n_views=n_views)
        validation, callbacks = None, []
        if validation_rows is not None:
            validation = Batches(load, validation_rows, values, targets.sample_weight,
                                 parameters.batch_size, n_views=n_views)
            callbacks = [early_stopping(parameters.n_iter_no_change)]
        compile_for(model, optimizer=parameters.optimizer, learning_rate=phase.learning_rate,
                    targets=targets)
        try:
            result = model.fit(
                train, validation_data=validation, epochs=phase.epochs, callbacks=callbacks,
                verbose=min(int(self.verbose), 2),
                shuffle=False,  # Batches shuffles with its own seeded generator
            )
        finally:
            for batches in (train, validation):
                if batches is not None:
                    batches.release()
        return {key: [float(v) for v in values] for key, values in result.history.items()}

    def _split(self, parameters, targets, seed, early_stopping):
        """Training rows and, with early stopping, validation rows (else None), stratified
        by class where the targets are classes."""
        rows = np.arange(len(targets.values))
        if not early_stopping:
            return rows, None
        try:
            return train_test_split(
                rows, test_size=parameters.validation_fraction, stratify=targets.strata,
                random_state=seed,
            )
        except ValueError as error:
            cause = ("early_stopping" if parameters.early_stopping
                     else "head_epochs='auto' with hidden layers (it stops early)")
            every_class = " with every class represented" * (targets.strata is not None)
            raise ValueError(
                f"{cause} cannot hold out validation_fraction={parameters.validation_fraction} "
                f"of {len(rows)} samples{every_class} ({error}). Give more "
                "samples or a larger validation_fraction, or train for a fixed number of "
                "epochs (early_stopping=False, head_epochs=30)."
            ) from None
