"""What the audit functions return: plain objects of NumPy arrays, one row per suspect photo,
with a DataFrame of them where pandas is installed."""

from dataclasses import dataclass, fields

import numpy as np

from .._optional import require


@dataclass(frozen=True)
class Findings:
    """Base of the audit results: the array attributes of the same length as ``indices``
    (most suspect first) are the columns of :meth:`to_frame`."""

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
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, np.ndarray) or len(value) != len(self.indices):
                continue
            name = "index" if field.name == "indices" else field.name
            if value.ndim == 1:
                columns[name] = value
            else:  # one column per class, or per side of a pair
                for k, column in enumerate(self._column_names(field.name, value.shape[1])):
                    columns[column] = value[:, k]
        return pd.DataFrame(columns)

    def _column_names(self, name, width):
        return [f"{name}_{k}" for k in range(width)]
