"""Rendering: Jinja2 templates with CSS inlined once per template, HTML and text parts."""
