"""What the HTML pages are made of: their style, escaped text, sections, and figures and
pictures embedded as data URIs (nothing to fetch: a page opens offline in any browser)."""

import base64
import html
import io

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.headline { font-size: 1.4em; margin: 0.4em 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left; }
td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; }
img.figure { max-width: 100%; }
.photos { display: flex; flex-wrap: wrap; gap: 0.8em; }
.photos figure { margin: 0; width: 260px; font-size: 0.8em; overflow-wrap: anywhere; }
.photos img { width: 128px; height: 128px; object-fit: contain; background: #eee; }
.photos figure.pair { width: auto; max-width: 540px; }
"""


def section(title, body):
    """A section of a page: its title, then ``body`` (HTML)."""
    return f"<h2>{escape(title)}</h2>\n{body}"


def figure(fig):
    """A matplotlib figure as an embedded PNG (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return f"<img class='figure' alt='' src='{encode(buffer.getvalue(), 'png')}'>"


def data_uri(picture, format):
    """A PIL image as a data URI in ``format`` ("JPEG" or "PNG")."""
    buffer = io.BytesIO()
    picture.save(buffer, format=format, quality=80)
    return encode(buffer.getvalue(), format.lower())


def encode(data, kind):
    return f"data:image/{kind};base64,{base64.b64encode(data).decode('ascii')}"


def escape(value):
    """``value`` as text in HTML, quotes escaped too (for attributes)."""
    return html.escape(str(value), quote=True)
