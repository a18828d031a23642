"""load_image_csv: image paths and every kind of target from a CSV file."""

import copy

import numpy as np
import pytest
from PIL import Image

from skconvnet import load_image_csv

pytestmark = pytest.mark.no_backend


@pytest.fixture
def folder(tmp_path):
    """A folder holding a.jpg, b.jpg, c.png and d.png."""
    for name in ("a.jpg", "b.jpg", "c.png", "d.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    return tmp_path


def write(folder, text, name="labels.csv"):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_class_names_are_strings_and_paths_are_read_from_the_csv_folder(folder):
    read = load_image_csv(write(folder, "path,label\na.jpg,cat\nb.jpg,dog\nc.png,cat\n"))
    paths, y = read
    assert paths == [folder / "a.jpg", folder / "b.jpg", folder / "c.png"]
    assert y.dtype.kind == "U" and y.tolist() == ["cat", "dog", "cat"]
    assert (read.kind, read.target_names) == ("class", ["cat", "dog"])


def test_whole_numbers_are_integer_classes(folder):
    read = load_image_csv(write(folder, "file,digit\na.jpg,7\nb.jpg,-1\nc.png,7\n"))
    assert read.kind == "class" and read.y.dtype == np.int64
    assert read.y.tolist() == [7, -1, 7] and read.target_names == [-1, 7]


def test_one_column_of_numbers_is_a_regression_target(folder):
    read = load_image_csv(write(folder, "path,size\na.jpg,2.5\nb.jpg,3\nc.png,-1e-3\n"))
    assert read.kind == "numbers" and read.target_names == ["size"]
    assert read.y.dtype == np.float64 and read.y.shape == (3,)
    np.testing.assert_array_equal(read.y, [2.5, 3.0, -0.001])


def test_several_columns_of_numbers_are_a_2d_target(folder):
    read = load_image_csv(write(folder, "path,w,h\na.jpg,1,2.5\nb.jpg,3,4\n"))
    assert read.kind == "numbers" and read.target_names == ["w", "h"]
    np.testing.assert_array_equal(read.y, [[1.0, 2.5], [3.0, 4.0]])


@pytest.mark.parametrize("separator", ["|", ";", ","])
def test_a_column_of_separated_tags_is_a_multilabel_indicator(folder, separator):
    cells = [f'"dog{separator} cat"', "dog", "", f'"cat{separator}cat"']  # empty: no tag
    text = "path,tags\n" + "".join(
        f"{path},{cell}\n" for path, cell in zip(["a.jpg", "b.jpg", "c.png", "d.png"], cells))
    read = load_image_csv(write(folder, text))
    assert read.kind == "tags" and read.target_names == ["cat", "dog"]  # sorted
    assert read.y.dtype.kind == "i"
    np.testing.assert_array_equal(read.y, [[1, 1], [0, 1], [0, 0], [1, 0]])


def test_whitespace_separates_tags_only_when_asked(folder):
    csv = write(folder, "path,label\na.jpg,golden retriever\nb.jpg,haze primary water\n")
    assert load_image_csv(csv).kind == "class"  # class names may hold spaces
    read = load_image_csv(csv, kind="tags")
    assert read.target_names == ["golden", "haze", "primary", "retriever", "water"]
    np.testing.assert_array_equal(read.y, [[1, 0, 0, 1, 0], [0, 1, 1, 0, 1]])
    read = load_image_csv(csv, tag_separator=" ")
    assert read.kind == "tags" and read.y.shape == (2, 5)


def test_columns_of_0_and_1_are_tags_and_a_tag_never_present_is_kept(folder):
    read = load_image_csv(write(folder, "path,dog,cat,bird\na.jpg,1,1,0\nb.jpg,0,1,0\n"))
    assert read.kind == "tags" and read.target_names == ["dog", "cat", "bird"]  # CSV order
    np.testing.assert_array_equal(read.y, [[1, 1, 0], [0, 1, 0]])


def test_one_column_of_0_and_1_is_binary_classes_or_one_tag(folder):
    csv = write(folder, "path,cat\na.jpg,1\nb.jpg,0\n")
    assert load_image_csv(csv).kind == "class"
    read = load_image_csv(csv, kind="tags")
    assert read.target_names == ["cat"]
    np.testing.assert_array_equal(read.y, [[1], [0]])


def test_kind_overrides_the_inference(folder):
    csv = write(folder, "path,age\na.jpg,30\nb.jpg,41\n")
    assert load_image_csv(csv).kind == "class"
    read = load_image_csv(csv, kind="numbers")
    assert read.kind == "numbers" and read.y.dtype == np.float64
    np.testing.assert_array_equal(read.y, [30.0, 41.0])
    read = load_image_csv(write(folder, "path,v\na.jpg,1.5\nb.jpg,2\n"), kind="class")
    assert read.kind == "class" and read.y.tolist() == ["1.5", "2"]
    read = load_image_csv(write(folder, "path,a,b\na.jpg,1,0\nb.jpg,0,1\n"), kind="numbers")
    np.testing.assert_array_equal(read.y, [[1.0, 0.0], [0.0, 1.0]])


def test_columns_can_be_named(folder):
    csv = write(folder, "split,image,label,score\ntrain,a.jpg,cat,0.5\ntest,b.jpg,dog,0.25\n")
    paths, y = load_image_csv(csv, label_columns="label")
    assert [p.name for p in paths] == ["a.jpg", "b.jpg"] and y.tolist() == ["cat", "dog"]
    read = load_image_csv(csv, label_columns=["score"])
    assert read.kind == "numbers" and read.y.tolist() == [0.5, 0.25]
    csv = write(folder, "label,where\ncat,a.jpg\ndog,b.jpg\n")
    paths, y = load_image_csv(csv, path_column="where")
    assert [p.name for p in paths] == ["a.jpg", "b.jpg"] and y.tolist() == ["cat", "dog"]


def test_without_a_known_path_column_the_first_named_one_holds_paths(folder):
    csv = write(folder, ",photo,label\n0,a.jpg,cat\n1,b.jpg,dog\n")  # pandas' unnamed index
    paths, y = load_image_csv(csv)
    assert [p.name for p in paths] == ["a.jpg", "b.jpg"] and y.tolist() == ["cat", "dog"]


def test_absolute_paths_and_another_image_folder(folder, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("csvs")
    csv = write(elsewhere, f"path,label\n{folder / 'a.jpg'},cat\nb.jpg,dog\n")
    with pytest.raises(FileNotFoundError, match=r"row 3: b\.jpg"):
        load_image_csv(csv)
    paths, _ = load_image_csv(csv, image_folder=folder)
    assert paths == [folder / "a.jpg", folder / "b.jpg"]


def test_ids_without_extension(folder):
    paths, y = load_image_csv(write(folder, "id,label\na,cat\nb,dog\n"), extension=".jpg")
    assert paths == [folder / "a.jpg", folder / "b.jpg"]


def test_blank_rows_short_rows_and_a_byte_order_mark(folder):
    csv = folder / "labels.csv"
    csv.write_bytes("\ufeffpath,label,note\r\na.jpg,cat\r\n\r\n,,\r\nb.jpg,dog,ok\r\n".encode())
    read = load_image_csv(csv, label_columns="label")
    assert read.y.tolist() == ["cat", "dog"]
    with pytest.raises(ValueError, match=r"labels\.csv, row 2: the label in column 'note' is "
                                         r"empty; fill in"):
        load_image_csv(csv, label_columns="note")


def test_the_pair_unpacks_copies_and_shows_its_kind(folder):
    read = load_image_csv(write(folder, "path,label\na.jpg,cat\nb.jpg,dog\n"))
    paths, y = read
    assert read.paths is paths and read.y is y
    # pickle's protocol (without its lookup by name, which the doctests' import of
    # skconvnet.datasets makes ambiguous in this process)
    again = copy.deepcopy(read)
    assert again.paths == paths and (again.kind, again.target_names) == ("class", ["cat", "dog"])
    assert repr(read) == ("LabelledImages(<2 paths>, y of shape (2,), kind='class', "
                          "target_names=['cat', 'dog'])")


def test_missing_files_are_named_with_their_rows(folder):
    csv = write(folder, "path,label\na.jpg,cat\nnope.jpg,dog\nb.jpg,cat\ngone.png,dog\n")
    with pytest.raises(FileNotFoundError, match=(
        r"(?s)labels\.csv: 2 of 4 image files do not exist:\n  row 3: nope\.jpg \(.*nope\.jpg\)"
        r"\n  row 5: gone\.png .*pass image_folder= the folder that holds the images"
    )):
        load_image_csv(csv)


def test_many_missing_files_are_cut_short(folder):
    csv = write(folder, "path,label\n" + "".join(f"x{i}.jpg,cat\n" for i in range(12)))
    with pytest.raises(FileNotFoundError, match=r"row 11: x9\.jpg .*\n  \.\.\. and 2 more"):
        load_image_csv(csv)


@pytest.mark.parametrize("text, kind, message", [
    ("path,label\na.jpg,cat\nb.jpg,\n", "auto",
     r"labels\.csv, row 3: the label in column 'label' is empty; fill in the class"),
    ("path,size\na.jpg,1.5\nb.jpg, \n", "auto",
     r"row 3: the label in column 'size' is empty; fill it in or remove the row"),
    ("path,dog,cat\na.jpg,1,\nb.jpg,0,1\n", "auto",
     r"row 2: the label in column 'cat' is empty; write 1 if the image has this tag"),
    ("path,size\na.jpg,1.5\nb.jpg,big\n", "numbers",
     r"labels\.csv, row 3: 'big' in column 'size' is not a finite number"),
    ("path,size\na.jpg,nan\n", "numbers", r"row 2: 'nan' in column 'size' is not a finite"),
    ("path,dog,cat\na.jpg,1,0\nb.jpg,0,yes\n", "tags",
     r"row 3: 'yes' in column 'cat' is not 0 or 1\. kind='tags' reads"),
    ("path,dog,cat\na.jpg,1,0.5\nb.jpg,0,yes\n", "auto",
     r"label columns 'dog', 'cat' hold neither only 0 and 1 .* nor only numbers"),
    ("path,a,b\na.jpg,x,y\n", "class", r"kind='class' reads one column of classes, got 2"),
    ("path,label\n,cat\n", "auto", r"row 2: the image path in column 'path' is empty"),
    ("path,label\na.jpg,cat,extra\n", "auto",
     r"row 2: 3 cells, but the header names 2 columns\. Quote cells"),
    ("", "auto", r"labels\.csv is empty: it needs a header row"),
    ("\n\npath,label\n", "auto", r"labels\.csv has a header row but no rows of images"),
    ("path\na.jpg\n", "auto", r"no column of labels beside its column of paths 'path'"),
    ("path,label,label\na.jpg,x,y\n", "auto", r"names column 'label' twice in its header"),
])
def test_bad_labels_are_named_with_their_rows(folder, text, kind, message):
    with pytest.raises(ValueError, match=message):
        load_image_csv(write(folder, text), kind=kind)


@pytest.mark.parametrize("options, message", [
    (dict(path_column="photo"),
     r"path_column='photo' is not a column of the CSV file; its columns are 'path', 'label'"),
    (dict(label_columns=["label", "Label"]), r"label_columns='Label' is not a column"),
    (dict(label_columns=[]), r"label_columns is empty"),
    (dict(label_columns="path"), r"label_columns names the column of paths 'path'"),
    (dict(kind="regression"), r"kind must be one of 'auto', 'class', 'tags', 'numbers', got "
                              r"'regression'"),
    (dict(tag_separator=""), r"tag_separator must be a non-empty string"),
    (dict(extension=1), r"extension must be a string such as '\.jpg', got 1"),
])
def test_bad_arguments_are_named(folder, options, message):
    with pytest.raises(ValueError, match=message):
        load_image_csv(write(folder, "path,label\na.jpg,cat\n"), **options)


def test_missing_csv_image_folder_and_other_encodings(folder):
    with pytest.raises(FileNotFoundError, match=r"nothing\.csv does not exist: pass a CSV"):
        load_image_csv(folder / "nothing.csv")
    with pytest.raises(FileNotFoundError, match=r"is a folder: pass a CSV file"):
        load_image_csv(folder)
    csv = write(folder, "path,label\na.jpg,cat\n")
    with pytest.raises(FileNotFoundError, match=r"image_folder='.*nowhere' is not a folder"):
        load_image_csv(csv, image_folder=folder / "nowhere")
    csv.write_bytes("path,label\na.jpg,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"labels\.csv is not UTF-8 text .* save it as UTF-8"):
        load_image_csv(csv)
