"""How tabular rows are drawn: each column a horizontal band of the image."""

import numpy as np
import pytest

from skconvnet.inputs.sources import _band_layout

pytestmark = pytest.mark.no_backend


def test_band_layout_gives_each_column_a_horizontal_band():
    two = _band_layout(2, (8, 4))
    np.testing.assert_array_equal(two, [[0] * 4] * 4 + [[1] * 4] * 4)
    many = _band_layout(12, (8, 4))  # wraps into two stacks, blanks at the end
    assert set(np.unique(many[:, :2])) == set(range(8))
    assert set(np.unique(many[:, 2:])) == {8, 9, 10, 11, 12}


def test_every_column_gets_pixels_as_long_as_the_image_has_enough():
    for n_columns in (1, 7, 32, 100, 32 * 32):
        layout = _band_layout(n_columns, (32, 32))
        assert set(np.unique(layout)) - {n_columns} == set(range(n_columns))


def test_more_columns_than_pixels_are_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"X has 17 columns, more than an image of "
                                         r"image_size=\(4, 4\) can show as bands \(16\)"):
        _band_layout(17, (4, 4))
