"""Stage 6, what the reader sees: the Sphinx extension of the book (:mod:`~gqa_lib.book.sphinx_ext`),
the offline chart renderer (:mod:`~gqa_lib.book.render`), chart builders
(:mod:`~gqa_lib.book.plots`), tables with units (:mod:`~gqa_lib.book.tables`), the explorers
(:mod:`~gqa_lib.book.widgets`), figure defaults (:mod:`~gqa_lib.book.figures`), the notebooks'
Colab cell (:mod:`~gqa_lib.book.colab`) and :func:`glue` / :func:`glue_all` for numbers in
prose. Importing the package imports only the glue; the submodules (altair, ipywidgets) load
when imported by name."""

from gqa_lib.book.glue import glue, glue_all

__all__ = ["glue", "glue_all"]
