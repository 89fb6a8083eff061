"""A ``.. pixelflag-table::`` directive: the PixelFlag table, read from the code.

Values, names and meanings come from `ccdpixfix.flags.PixelFlag` (the ``#:``
comment above each member); the "masked" and "replaced" columns from
`ccdpixfix.BAD_PIXEL_FLAGS` and `ccdpixfix.DEFAULT_REPLACE_FLAGS`, so the
table cannot drift from the package.
"""

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docutils import SphinxDirective


def _rows():
    from ccdpixfix import BAD_PIXEL_FLAGS, DEFAULT_REPLACE_FLAGS, PixelFlag

    docs = ModuleAnalyzer.for_module("ccdpixfix.flags").find_attr_docs()
    for flag in PixelFlag:
        meaning = " ".join(
            line.strip() for line in docs.get(("PixelFlag", flag.name), []) if line
        )
        masked = "yes" if flag & BAD_PIXEL_FLAGS else "no"
        replaced = "yes" if flag & DEFAULT_REPLACE_FLAGS else "no"
        yield f"``{flag.name}``", str(int(flag)), masked, replaced, meaning


class PixelFlagTable(SphinxDirective):
    has_content = False

    def run(self):
        lines = [
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 18 8 8 10 56",
            "",
            "   * - flag",
            "     - value",
            "     - masked",
            "     - replaced by default",
            "     - meaning",
        ]
        for cells in _rows():
            lines.append(f"   * - {cells[0]}")
            lines.extend(f"     - {cell}" for cell in cells[1:])
        holder = nodes.container()
        self.state.nested_parse(
            StringList(lines, source="<pixelflag-table>"), self.content_offset, holder
        )
        return holder.children


def setup(app):
    app.add_directive("pixelflag-table", PixelFlagTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
