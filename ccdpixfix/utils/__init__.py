"""CCDData plumbing and provenance shared by every step.

`ccdpixfix.utils.ccd` checks frames and builds the new ones a step returns;
`ccdpixfix.utils.provenance` writes the HISTORY records and keywords. Nothing
here imports another part of ccdpixfix but `ccdpixfix.flags`.
"""
