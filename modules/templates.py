"""Pages rendered from the Jinja2 templates in a package's `templates/` folder: `*.html.j2` autoescaped, others
(Markdown) as written."""

from __future__ import annotations

import functools
from typing import Any

import jinja2


@functools.cache
def _environment(package: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader(package),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        trim_blocks=True,  # a line holding only a {% ... %} tag leaves no line in the page
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name fails instead of rendering as nothing
    )


def render(package: str, template: str, **values: Any) -> str:
    """The template named `template` in `package`'s templates/ folder, filled with `values`."""
    return _environment(package).get_template(template).render(**values)
