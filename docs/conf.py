"""Sphinx configuration of the notebooks site that ``make run`` builds (``opusclip_lib.site``).

The site renders the notebooks ``opusclip run`` has just executed, from their stored outputs:
Sphinx never runs a cell, and nothing is fetched from the internet (no CDN scripts).
"""

project = "Video-OpusClip"
author = "the Video-OpusClip authors"
extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# Build from the outputs stored by `opusclip run`; never execute.
nb_execution_mode = "off"
# Widget outputs would load require.js and the widget manager from CDNs: show their text form.
nb_ipywidgets_js = {}
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_title = "Video-OpusClip"
# Without a default mode the theme's script logs "Got invalid theme mode" as a console error.
html_favicon = "favicon.svg"  # else the browser asks for /favicon.ico and logs a 404
html_context = {"default_mode": "light"}
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
}
