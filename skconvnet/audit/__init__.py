"""Checking the photos themselves: wrong labels (:mod:`.labels`), copies and leaks between
training and test (:mod:`.duplicates`), photos unlike the rest (:mod:`.outliers`), each
from features of a pretrained network (:mod:`.features`)."""
