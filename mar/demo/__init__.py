"""The web demo: a Gradio page that samples a checkpoint and shows the tokens being unmasked step by step.

``mar demo --checkpoint RUN`` or ``python -m mar.demo --checkpoint RUN``; gradio comes with the ``demo`` extra
(``pip install -e ".[demo]"``). Only ``app.py`` imports gradio, so the rest (settings, generation, frames) works
and is tested without it.
"""
