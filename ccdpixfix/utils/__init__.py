"""CCDData plumbing, provenance and options shared by every step.

`ccdpixfix.utils.ccd` checks frames and builds the new ones a step returns;
`ccdpixfix.utils.provenance` writes the HISTORY records and keywords;
`ccdpixfix.utils.options` is the base of the steps' options objects. Nothing
here imports another part of ccdpixfix but the leaves `ccdpixfix.flags`
and ``ccdpixfix._version``.
"""
