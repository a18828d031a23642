"""A one-line progress bar on stderr, counting the photos an earlier run already did."""

import sys
import time


class Progress:
    """``[=====.....] 1200/5000 images, 800 already done, 14.2 images/s``.

    Keras' bar would import Keras (``predict`` on an ``.onnx`` file runs without it), and its
    rate would count the photos read back from an earlier run as computed.
    """

    def __init__(self, total, *, already=0):
        self.total, self.already, self.done = total, already, already
        self.start = time.perf_counter()
        self._draw()

    def update(self, n):
        self.done += n
        self._draw()

    def __enter__(self):
        return self

    def __exit__(self, *failure):
        """End the line, whether the run finished or stopped (so that a message follows on
        a line of its own)."""
        sys.stderr.write("\n")
        sys.stderr.flush()

    def _draw(self):
        filled = int(30 * self.done / max(self.total, 1))
        line = f"\r[{'=' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} images"
        if self.already:
            line += f", {self.already} already done"
        computed, elapsed = self.done - self.already, time.perf_counter() - self.start
        if computed and elapsed > 0:
            line += f", {computed / elapsed:.1f} images/s"
        sys.stderr.write(line)
        sys.stderr.flush()
