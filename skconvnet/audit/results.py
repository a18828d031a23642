"""What the audit functions return: plain objects of NumPy arrays, one row per suspect photo,
with a DataFrame of them where pandas is installed."""

from dataclasses import dataclass

import numpy as np

from .._optional import require


@dataclass(frozen=True)
class Findings:
    """Base of the audit results: the fields named in ``COLUMNS``, one entry per suspect
    photo (most suspect first), are the columns of :meth:`to_frame`."""

    COLUMNS = ("indices",)

    indices: np.ndarray

    def __len__(self):
        return len(self.indices)

    def to_frame(self):
        """The suspect photos as a pandas DataFrame, one row each, most suspect first.

        Returns
        -------
        frame : pandas.DataFrame
            A column per per-photo attribute (``index``: the photo's position).
        """
        pd = require("pandas", extra="plot", purpose=f"{type(self).__name__}.to_frame")
        columns = {}
        for name in self.COLUMNS:
            value = getattr(self, name)
            if value is None:
                continue
            if value.ndim == 1:
                columns["index" if name == "indices" else name] = value
            else:  # one column per class
                for k, column in enumerate(self._column_names(name, value.shape[1])):
                    columns[column] = value[:, k]
        return pd.DataFrame(columns)

    def _column_names(self, name, width):
        return [f"{name}_{k}" for k in range(width)]
