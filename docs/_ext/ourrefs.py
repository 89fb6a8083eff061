"""Resolve short references to ccdpixfix's own objects.

Docstrings name the package's objects the way a reader does, by the name
they are known under: ```fix_file``` in ``ccdpixfix.pipeline.batch``, ```fix_pixels```
(documented as ``ccdpixfix.fix_pixels``), ```ccdpixfix.pipeline.fix_pixels```.
Sphinx looks a plain name up only in the current module and at the top
level, so these would be broken links (warnings under ``nitpicky``). When
Sphinx finds no target, this extension looks among the documented objects of
``ccdpixfix``:

1. the documented names ending in the reference's last part
   (``.fix_file``), kept only if they are the very same Python object as the
   reference names (checked by importing both, when the reference is a full
   name) — so a module's re-export finds the top-level page;
2. if they all are the same object (a re-export documented twice), the
   shortest name wins; if they are different objects the reference is
   ambiguous and stays unresolved, so the nitpicky build still fails on it.

Names outside ``ccdpixfix`` are never touched: those go to ``nitpick_ignore``
in conf.py.
"""

import importlib

from sphinx.util.nodes import make_refnode

PACKAGE = "ccdpixfix"
_MISSING = object()


def _import(dotted):
    """The object a dotted name points to, or _MISSING."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            obj = getattr(obj, attribute, _MISSING)
            if obj is _MISSING:
                return _MISSING
        return obj
    return _MISSING


def _same(first, second):
    return first is not _MISSING and first is second


def _candidates(objects, target, module):
    """Documented ccdpixfix names that ``target`` can only mean."""
    last = target.rsplit(".", 1)[-1]
    names = [
        name
        for name in objects
        if name.startswith(PACKAGE + ".")
        and (name == target or name.endswith("." + last))
    ]
    if "." in target and target.startswith(PACKAGE + "."):
        wanted = _import(target)
        names = [name for name in names if _same(_import(name), wanted)]
    elif "." in target:
        # A partly qualified name (SimulatedCamera.science): it must match
        # the end of the documented name.
        names = [name for name in names if name.endswith("." + target)]
    if len(names) > 1:
        # The same object under several documented names, or a name of the
        # current module among others: prefer the current module's, then
        # the shortest when they are all one object.
        local = [name for name in names if module and name == f"{module}.{target}"]
        if local:
            return local
        objects_found = [_import(name) for name in names]
        first = objects_found[0]
        if first is not _MISSING and all(obj is first for obj in objects_found):
            return [min(names, key=len)]
    return names


def resolve(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    module = node.get("py:module") or ""
    if not (target.startswith(PACKAGE) or module.startswith(PACKAGE)):
        return None
    domain = env.get_domain("py")
    names = _candidates(domain.objects, target, module)
    if len(names) == 1:
        entry = domain.objects[names[0]]
        return make_refnode(
            app.builder,
            node["refdoc"],
            entry.docname,
            entry.node_id,
            contnode,
            names[0],
        )
    modules = domain.modules
    if target in modules:
        entry = modules[target]
        return make_refnode(
            app.builder, node["refdoc"], entry.docname, entry.node_id, contnode
        )
    return None


def setup(app):
    app.connect("missing-reference", resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
